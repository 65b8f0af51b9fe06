"""Persistent classes stored by gen_datafs.py.

They live in their own module so the pickles name them `genmodel.<Class>`
(instead of `__main__.<Class>`), and so expected.py could import them.
"""
from persistent import Persistent
from persistent.list import PersistentList
from persistent.mapping import PersistentMapping
from BTrees.IOBTree import IOBTree
from BTrees.OOBTree import OOBTree


class Item(Persistent):
    """A document: plain state plus strong and weak references to others."""

    def __init__(self, title, body, tags, stamp):
        self.title = title
        self.body = body
        self.tags = tags
        self.related = []   # strong references to other persistent objects
        self.weak = None    # a persistent.wref.WeakRef, sometimes
        self.stamp = stamp


class Folder(Persistent):
    """A container: an OOBTree of items by title, an IOBTree by number."""

    def __init__(self, name):
        self.name = name
        self.items = OOBTree()
        self.by_id = IOBTree()
        self.meta = PersistentMapping()
        self.log = PersistentList()


class Keyed(Persistent):
    """A class with __getnewargs__: ZODB refers to its instances by bare oid
    (same database) or by ['n', (db, oid)] (another database)."""

    def __new__(cls, key=None):
        return super().__new__(cls)

    def __init__(self, key):
        self.key = key
        self.value = None

    def __getnewargs__(self):
        return (self.key,)


class Counter(Persistent):
    """A small object that is rewritten often (several revisions)."""

    def __init__(self):
        self.n = 0
