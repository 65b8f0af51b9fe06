#!/usr/bin/env python3
"""Golden vectors for the pickle scanner of zfs-format (src/pickle), made by real ZODB.

Requirements: Python 3 with ZODB 6 (zodbpickle, persistent, BTrees) and zc.zlibstorage.
Usage:

    python make_vectors.py > vectors.txt
    python make_vectors.py SEED MUTATIONS > big.txt    (a larger throwaway differential run)

Every case is a record payload (two pickles) and what ZODB makes of it:

    case <name>
    data <hex>
    refs_ascii ok <oid hex>...    ZODB.serialize.referencesf (Python 3 ZODB, FS30)
    refs_ascii err <exception>
    refs_bytes ok|err ...          the same conversion over noload with encoding='bytes'
                                   (how Python 2 ZODB saw FS21 strings)
    kinds_ascii ok <kind>/<oid hex>/<db hex>...   every persistent id, classified
    kinds_bytes ok|err ...
    meta ok <module hex> <name hex>   ZODB.utils.get_pickle_metadata, str() of each part
    meta raise <exception>            get_pickle_metadata itself raised
    untransformed <hex>               (transformed records) the payload zc.zlibstorage reads
    end

An empty hex string is written as "-". Cases come from four sources: records written by
ZODB into FileStorages (plain, multi-database, zlib-compressed), Python-2-style protocol 1
and 2 records made with zodbpickle's pure-Python pickler, hand-assembled opcode sequences
for the corner cases, and seeded random mutations of all of those (refs only).
"""
import io
import random
import struct
import sys
import tempfile
import os

import transaction
import zodbpickle.pickle as zpickle
from zodbpickle import pickle_3
from zodbpickle import binary
import persistent
from persistent.mapping import PersistentMapping
from persistent.list import PersistentList
from persistent.wref import WeakRef
from BTrees.OOBTree import OOBTree
from BTrees.IOBTree import IOBTree
import ZODB
import ZODB.FileStorage
from ZODB.serialize import referencesf
from ZODB.utils import get_pickle_metadata
from ZODB.persistentclass import PersistentMetaClass
import zc.zlibstorage


# ---------------------------------------------------------------- oracles

def collect_pids(data, encoding):
    """Persistent ids in the order zodbpickle's noload() hands them out."""
    found = []
    if encoding == 'ascii':
        u = zpickle.Unpickler(io.BytesIO(data))
    else:
        u = zpickle.Unpickler(io.BytesIO(data), encoding='bytes', errors='bytes')
    u.persistent_load = found.append
    u.noload()
    u.noload()
    return found


def oid_of(value, encoding):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('ascii' if encoding == 'ascii' else 'latin-1')
    raise AssertionError('element 0 is not bytes or str')


def strong_refs(data, encoding):
    """referencesf itself for Python 3 ZODB; for the bytes view the same rules."""
    if encoding == 'ascii':
        return referencesf(data)
    oids = []
    for pid in collect_pids(data, encoding):
        if isinstance(pid, tuple):
            oids.append(oid_of(pid[0], encoding))
        elif isinstance(pid, (bytes, str)):
            oids.append(oid_of(pid, encoding))
        else:
            assert isinstance(pid, list)
    return oids


def text_bytes(v):
    return v if isinstance(v, bytes) else v.encode('utf-8', 'surrogatepass')


def is_text(v):
    return isinstance(v, (bytes, str))


def classify(pid, encoding):
    """(kind, oid, db) following the forms ObjectWriter.persistent_id writes."""
    if isinstance(pid, tuple):
        return ('OidClass', oid_of(pid[0], encoding), None)
    if isinstance(pid, (bytes, str)):
        return ('Oid', oid_of(pid, encoding), None)
    assert isinstance(pid, list)
    unknown = ('UnknownList', b'', None)
    if len(pid) == 1:
        return ('LegacyWeak', text_bytes(pid[0]), None) if is_text(pid[0]) else unknown
    if len(pid) != 2 or not is_text(pid[0]) or not isinstance(pid[1], tuple):
        return unknown
    tag, args = text_bytes(pid[0]), pid[1]
    if tag == b'w' and len(args) == 1 and is_text(args[0]):
        return ('Weak', text_bytes(args[0]), None)
    if tag == b'w' and len(args) == 2 and is_text(args[0]) and is_text(args[1]):
        return ('Weak', text_bytes(args[0]), text_bytes(args[1]))
    if tag == b'm' and len(args) == 3 and is_text(args[0]) and is_text(args[1]):
        return ('CrossDatabase', text_bytes(args[1]), text_bytes(args[0]))
    if tag == b'n' and len(args) == 2 and is_text(args[0]) and is_text(args[1]):
        return ('CrossDatabaseNoClass', text_bytes(args[1]), text_bytes(args[0]))
    return unknown


def hx(b):
    return b.hex() if b else '-'


def outcome(fn):
    try:
        return 'ok', fn()
    except Exception as e:  # the exception class is part of the vector
        return 'err', type(e).__name__


def emit(name, data, refs_only=False, untransformed=None):
    out = sys.stdout
    out.write('case %s\ndata %s\n' % (name, hx(data)))
    for enc in ('ascii', 'bytes'):
        status, val = outcome(lambda: strong_refs(data, enc))
        line = ' '.join(hx(o) for o in val) if status == 'ok' else val
        out.write(('refs_%s %s %s' % (enc, status, line)).rstrip() + '\n')
    if not refs_only:
        for enc in ('ascii', 'bytes'):
            status, val = outcome(
                lambda: [classify(p, enc) for p in collect_pids(data, enc)])
            if status == 'ok':
                line = ' '.join('%s/%s/%s' % (k, hx(o), hx(d) if d is not None else '*')
                                for k, o, d in val)
            else:
                line = val
            out.write(('kinds_%s %s %s' % (enc, status, line)).rstrip() + '\n')
        try:
            mod, name = get_pickle_metadata(data)
            out.write('meta ok %s %s\n' % (hx(str(mod).encode('utf-8', 'surrogatepass')),
                                           hx(str(name).encode('utf-8', 'surrogatepass'))))
        except Exception as e:
            out.write('meta raise %s\n' % type(e).__name__)
    if untransformed is not None:
        out.write('untransformed %s\n' % hx(untransformed))
    out.write('end\n')


BASES = []   # (name, data) used as seeds for the mutations


def add(name, data, **kw):
    emit(name, data, **kw)
    BASES.append((name, data))


# ---------------------------------------------------------------- ZODB-written records

class Node(persistent.Persistent):
    def __init__(self, label, other=None):
        self.label = label
        self.other = other


class NewArgs(persistent.Persistent):
    """Instances are referenced by bare oid: the class has __getnewargs__."""

    def __init__(self, n=0):
        self.n = n

    def __getnewargs__(self):
        return ()


class Slotted(persistent.Persistent):
    """References inside REDUCE arguments (a set) and as a dict key."""

    def __init__(self, member):
        self.members = {member}             # one member: set order is not reproducible
        self.keys = {member: 'first'}


class PClass(persistent.Persistent, metaclass=PersistentMetaClass):
    """A persistent class: its instances get ((module, name), None) class metadata."""


def records_of(path):
    """(oid, data) of every data record, in file order."""
    st = ZODB.FileStorage.FileStorage(path, read_only=True)
    try:
        for txn in st.iterator():
            for rec in txn:
                if rec.data:
                    yield rec.oid, rec.data
    finally:
        st.close()


def plain_db(tmp):
    path = os.path.join(tmp, 'plain.fs')
    db = ZODB.DB(ZODB.FileStorage.FileStorage(path))
    conn = db.open()
    root = conn.root()
    a = Node('a')
    b = Node('b', a)
    a.other = b                       # a cycle
    root['a'] = a
    root['pm'] = PersistentMapping({'x': a, 'y': PersistentList([a, b, a])})
    tree = OOBTree()
    for i in range(300):              # enough keys for several buckets
        tree['k%04d' % i] = Node('n%d' % i) if i % 50 == 0 else i
    root['tree'] = tree
    itree = IOBTree()
    for i in range(5):
        itree[i] = b
    root['itree'] = itree
    na = NewArgs(1)
    root['na'] = na                   # bare-oid reference
    root['na_holder'] = Node('holder', na)
    root['weak'] = Node('weak', WeakRef(a))
    transaction.commit()
    root['slotted'] = Slotted(a)
    root['PClass'] = PClass           # the class itself is stored
    transaction.commit()
    inst = PClass()
    inst.x = a
    root['pinst'] = inst
    root['unicode'] = Node('h\xe9llo \u20ac', b'\x00\xff bytes')
    transaction.commit()
    db.close()
    return list(records_of(path))


def multi_db(tmp):
    databases = {}
    main = ZODB.DB(ZODB.FileStorage.FileStorage(os.path.join(tmp, 'main.fs')),
                   databases=databases, database_name='main')
    ZODB.DB(ZODB.FileStorage.FileStorage(os.path.join(tmp, 'other.fs')),
            databases=databases, database_name='other')
    conn = main.open()
    other = conn.get_connection('other')
    far = Node('far')
    far_na = NewArgs(2)
    other.root()['far'] = far
    other.root()['far_na'] = far_na
    transaction.commit()
    root = conn.root()
    root['m'] = Node('m', far)                       # ['m', (db, oid, klass)]
    root['n'] = Node('n', far_na)                    # ['n', (db, oid)]
    root['xweak'] = Node('xweak', WeakRef(far))      # ['w', (oid, db)]
    transaction.commit()
    for db in list(databases.values()):
        db.close()
    return list(records_of(os.path.join(tmp, 'main.fs')))


def zlib_db(tmp):
    path = os.path.join(tmp, 'zlib.fs')
    st = zc.zlibstorage.ZlibStorage(ZODB.FileStorage.FileStorage(path))
    db = ZODB.DB(st)
    conn = db.open()
    root = conn.root()
    root['big'] = Node('x' * 500, Node('y' * 300))
    root['list'] = PersistentList([Node('e%d' % i) for i in range(20)])
    transaction.commit()
    db.close()
    return list(records_of(path))


# ---------------------------------------------------------------- Python-2-style pickles

class Py2StylePickler(pickle_3._Pickler):
    """zodbpickle's pure-Python pickler writing str and bytes as Python 2 strings
    (STRING, BINSTRING, SHORT_BINSTRING), as cPickle did for ZODB 3/4 and ZODB 5.3 on
    Python 2."""

    dispatch = dict(pickle_3._Pickler.dispatch)

    def save_py2_string(self, obj, pack=struct.pack):
        raw = obj if isinstance(obj, bytes) else obj.encode('latin-1')
        if self.bin:
            if len(raw) < 256:
                self.write(pickle_3.SHORT_BINSTRING + bytes([len(raw)]) + raw)
            else:
                self.write(pickle_3.BINSTRING + pack('<i', len(raw)) + raw)
        else:
            self.write(pickle_3.STRING + repr(raw)[1:].encode('ascii') + b'\n')
        self.memoize(obj)

    dispatch[bytes] = save_py2_string
    dispatch[str] = save_py2_string


class K:
    """Stands for a persistent class in hand-made pickles (pickled as a GLOBAL)."""


def py2_record(proto, state, pid_of, klass=PersistentMapping):
    f = io.BytesIO()
    p = Py2StylePickler(f, proto)
    p.persistent_id = pid_of
    p.dump(klass)
    p.dump(state)
    return f.getvalue()


class Ref:
    def __init__(self, pid):
        self.pid = pid


def pid_of(obj):
    return obj.pid if isinstance(obj, Ref) else None


def py2_cases():
    lo = b'\x00' * 7 + b'\x05'
    hi = b'\x00' * 6 + b'\x01\xa0'
    out = []
    for proto in (0, 1, 2):
        out.append(('py2 p%d bare oid' % proto,
                    py2_record(proto, {'data': Ref(lo)}, pid_of)))
        out.append(('py2 p%d bare oid >= 0x80' % proto,
                    py2_record(proto, {'data': Ref(hi)}, pid_of)))
        out.append(('py2 p%d latin-1 attribute' % proto,
                    py2_record(proto, {'title': 'caf\xe9', 'n': 7}, pid_of)))
    for proto in (1, 2):
        out.append(('py2 p%d (oid, klass)' % proto,
                    py2_record(proto, {'data': Ref((lo, K))}, pid_of)))
        out.append(('py2 p%d (oid >= 0x80, klass)' % proto,
                    py2_record(proto, {'a': Ref((hi, K)), 'b': Ref((lo, K))}, pid_of)))
        out.append(('py2 p%d weak and cross-db' % proto,
                    py2_record(proto, [Ref(['w', (lo,)]), Ref(['m', ('db', hi, K)]),
                                       Ref(['n', ('db', lo)]), Ref([lo])], pid_of)))
        out.append(('py2 p%d long string oid (BINSTRING)' % proto,
                    py2_record(proto, {'data': Ref(b'\x01' * 300)}, pid_of)))
        out.append(('py2 p%d class metadata ((mod, name), None)' % proto,
                    py2_record(proto, None, pid_of, klass=(('mymod', 'MyClass'), None))))
        out.append(('py2 p%d class metadata (klass, newargs)' % proto,
                    py2_record(proto, {}, pid_of, klass=(K, ()))))
    return out


# ---------------------------------------------------------------- hand-assembled opcodes

OID = b'\x00' * 7 + b'\x07'
OID_HI = b'\x00' * 6 + b'\x01\x80'


def C(b):
    return b'C' + bytes([len(b)]) + b


def U(b):
    return b'U' + bytes([len(b)]) + b


def X(s):
    b = s.encode('utf-8', 'surrogatepass') if isinstance(s, str) else s
    return b'X' + struct.pack('<I', len(b)) + b


def G(mod, name):
    return b'c' + mod + b'\n' + name + b'\n'


CLS3 = b'\x80\x03' + G(b'persistent.mapping', b'PersistentMapping') + b'q\x00.'


def st3(ops):
    """A protocol 3 state pickle {'data': <ops>}."""
    return b'\x80\x03}q\x01' + X('data') + b'q\x02' + ops + b's.'


def hand_cases():
    c = []
    a = c.append
    a(('memo shared: state BINGETs the class', CLS3 + st3(C(OID) + b'h\x00\x86Q')))
    a(('memo missing key', CLS3 + st3(C(OID) + b'h\x07\x86Q')))
    a(('memo LONG_BINPUT/LONG_BINGET', CLS3 + b'\x80\x03' + C(OID) + b'r\x00\x01\x00\x00'
       + b'0j\x00\x01\x00\x00Q.'))
    a(('memo text PUT/GET', b'cm\nK\np0\n.' + b'(' + C(OID) + b'p12\n0g12\ng0\ntQ.'))
    a(('memo GET negative', b'cm\nK\np0\n.' + b'g-1\nQ.'))
    a(('memo PUT negative', b'cm\nK\np-1\n.N.'))
    a(('ref in the class pickle', b'\x80\x03' + C(OID) + b'QN\x86.' + b'\x80\x03N.'))
    a(('ref twice via memo', CLS3 + b'\x80\x03(' + C(OID) + b'q\x09Qh\x09Ql.'))
    a(('ref as dict key', CLS3 + b'\x80\x03}q\x01' + C(OID) + b'QK\x01s.'))
    a(('ref inside REDUCE args', CLS3 + st3(G(b'builtins', b'set') + b']' + C(OID)
                                           + b'Qa\x85R')))
    a(('REDUCE-built oid (issue 202)', CLS3 + st3(G(b'_codecs', b'encode') + X('abc')
                                                 + X('latin1') + b'\x86R' + G(b'm', b'K')
                                                 + b'\x86Q')))
    a(('REDUCE-built bare oid', CLS3 + st3(G(b'_codecs', b'encode') + X('abc') + X('latin1')
                                          + b'\x86RQ')))
    a(('single pickle only', CLS3))
    a(('empty payload', b''))
    a(('protocol 4', b'\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.\x80\x04N.'))
    a(('protocol 5 header', b'\x80\x05N.N.'))
    a(('protocol 4 opcode in protocol 3', CLS3 + b'\x80\x03\x8c\x01aQ.'))
    a(('empty list pid', CLS3 + st3(b']Q')))
    a(('1-tuple pid', CLS3 + st3(C(OID) + b'\x85Q')))
    a(('3-tuple pid', CLS3 + st3(C(OID) + b'NN\x87Q')))
    a(('empty tuple pid', CLS3 + st3(b')Q')))
    a(('int pid', CLS3 + st3(b'K\x05Q')))
    a(('None pid', CLS3 + st3(b'NQ')))
    a(('dict pid', CLS3 + st3(b'}Q')))
    a(('tuple pid with int element 0', CLS3 + st3(b'K\x05N\x86Q')))
    a(('tuple pid with list element 0', CLS3 + st3(b']N\x86Q')))
    a(('str oid (BINUNICODE) ascii', CLS3 + st3(X('\x00' * 7 + '\x07') + b'Q')))
    a(('str oid (BINUNICODE) non-ascii', CLS3 + st3(X('\x00' * 7 + '\xe9') + b'Q')))
    a(('str oid (BINUNICODE) above latin-1', CLS3 + st3(X('\u20ac' * 2) + b'Q')))
    a(('BINUNICODE surrogatepass', CLS3 + st3(X('\ud800') + b'0N')))
    a(('BINUNICODE invalid utf-8', CLS3 + st3(X(b'\xff\xfe') + b'0N')))
    a(('w form', CLS3 + st3(b'](' + X('w') + C(OID) + b'\x85eQ')))
    a(('w form with db', CLS3 + st3(b'](' + X('w') + C(OID) + X('db') + b'\x86eQ')))
    a(('legacy weak', CLS3 + st3(b']' + C(OID) + b'aQ')))
    a(('m form', CLS3 + st3(b'](' + X('m') + X('db') + C(OID) + G(b'm', b'K') + b'\x87eQ')))
    a(('n form', CLS3 + st3(b'](' + X('n') + X('db') + C(OID) + b'\x86eQ')))
    a(('unknown list tag', CLS3 + st3(b'](' + X('z') + C(OID) + b'\x85eQ')))
    a(('w form wrong arity', CLS3 + st3(b'](' + X('w') + C(OID) + b'NN\x87eQ')))
    a(('list pid mutated after BINPERSID', CLS3 + b'\x80\x03]q\x05Qh\x05' + C(OID) + b'a.'))
    a(('list pid via LIST opcode', CLS3 + st3(b'(' + X('w') + C(OID) + b'\x85lQ')))
    a(('APPEND into None dropped', CLS3 + b'\x80\x03N' + C(OID) + b'Qa.'))
    a(('APPEND into dict', CLS3 + b'\x80\x03}K\x01a.'))
    a(('APPEND into tuple', CLS3 + b'\x80\x03)K\x01a.'))
    a(('APPENDS with nothing', CLS3 + b'\x80\x03](e.'))
    a(('SETITEM into None dropped', CLS3 + b'\x80\x03NK\x01' + C(OID) + b'Qs.'))
    a(('SETITEM into list', CLS3 + b'\x80\x03](K\x01K\x02eK\x00' + C(OID) + b's.'))
    a(('SETITEM into list out of range', CLS3 + b'\x80\x03]K\x00K\x01s.'))
    a(('SETITEM into list negative', CLS3 + b'\x80\x03](K\x01K\x02eJ\xff\xff\xff\xffK\x05s.'))
    a(('SETITEM into list str key', CLS3 + b'\x80\x03](K\x01eX\x01\x00\x00\x00aK\x05s.'))
    a(('SETITEM into str', CLS3 + b'\x80\x03' + X('s') + b'K\x00K\x05s.'))
    a(('SETITEMS odd', CLS3 + b'\x80\x03}(K\x01u.'))
    a(('SETITEMS odd into None', CLS3 + b'\x80\x03N(K\x01u.'))
    a(('unhashable key list', CLS3 + b'\x80\x03}]K\x01s.'))
    a(('unhashable key tuple of list', CLS3 + b'\x80\x03}]\x85K\x01s.'))
    a(('hashable key tuple', CLS3 + b'\x80\x03}K\x01\x85K\x01s.'))
    a(('DICT opcode', CLS3 + b'\x80\x03(K\x01' + C(OID) + b'QK\x02K\x03d.'))
    a(('DICT opcode odd', CLS3 + b'\x80\x03(K\x01K\x02K\x03d.'))
    a(('DICT opcode unhashable', CLS3 + b'\x80\x03(]K\x02d.'))
    a(('OBJ keeps first after mark', CLS3 + b'\x80\x03(' + C(OID) + b'K\x01oQ.'))
    a(('OBJ empty mark', CLS3 + b'\x80\x03N(o.'))
    a(('INST', CLS3 + b'(K\x01imod\nCls\n.'))
    a(('NEWOBJ', CLS3 + b'\x80\x03' + G(b'm', b'K') + b')\x81' + b'}b.'))
    a(('BUILD underflow', CLS3 + b'\x80\x03b.'))
    a(('EXT1', CLS3 + b'\x80\x03\x82\x01.'))
    a(('EXT2 truncated', CLS3 + b'\x80\x03\x83\x01'))
    a(('POP on mark', CLS3 + b'\x80\x03N(0.'))
    a(('POP empty', CLS3 + b'0.'))
    a(('POP_MARK', CLS3 + b'\x80\x03N(K\x01K\x021.'))
    a(('DUP', CLS3 + b'\x80\x03' + C(OID) + b'2Q0Q.'))
    a(('DUP empty', CLS3 + b'2.'))
    a(('TUPLE with stale mark', CLS3 + b'(N0K\x01\x86N\x86t.'))
    a(('TUPLE2 pops below mark', CLS3 + b'\x80\x03K\x01(K\x02\x86.'))
    a(('no mark', CLS3 + b't.'))
    a(('STOP on empty stack', CLS3 + b'.'))
    a(('unknown opcode', CLS3 + b'\x80\x03\xff.'))
    a(('unknown opcode @', CLS3 + b'@.'))
    a(('PERSID text oid', b'cm\nK\n.' + b'P' + OID + b'\n.'))
    a(('PERSID short line', b'cm\nK\n.' + b'Pab\n.'))
    a(('PERSID empty line', b'cm\nK\n.' + b'P\n.'))
    a(('PERSID non-ascii', b'cm\nK\n.' + b'P\xff\xfe\n.'))
    a(('STRING escapes', b'cm\nK\n.' + b"S'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x07'\nQ."))
    a(('STRING plain', b'cm\nK\n.' + b"S'abc'\nQ."))
    a(('STRING double quotes', b'cm\nK\n.' + b'S"a\'b"\nQ.'))
    a(('STRING bad quotes', b'cm\nK\n.' + b"S'abc\nQ."))
    a(('STRING bad \\x', b'cm\nK\n.' + b"S'\\x0'\nQ."))
    a(('STRING non-ascii raw', b'cm\nK\n.' + b"S'\xe9'\nQ."))
    a(('STRING non-ascii escape', b'cm\nK\n.' + b"S'\\xe9'\nQ."))
    a(('STRING octal and unknown escape', b'cm\nK\n.' + b"S'\\101\\q\\\\'\nQ."))
    a(('UNICODE', b'cm\nK\n.' + b'Vabc\nQ.'))
    a(('UNICODE escape', b'cm\nK\n.' + b'V\\u00e9\nQ.'))
    a(('UNICODE bad escape', b'cm\nK\n.' + b'V\\u00\nQ.'))
    a(('UNICODE latin-1 byte', b'cm\nK\n.' + b'V\xe9\nQ.'))
    a(('INT', b'cm\nK\n.' + b'I12\nI01\nI0x1f\n\x87Q.'))
    a(('INT bad', b'cm\nK\n.' + b'Iabc\n.'))
    a(('INT octal 08', b'cm\nK\n.' + b'I08\n.'))
    a(('INT huge', b'cm\nK\n.' + b'I123456789012345678901234567890\n.'))
    a(('LONG', b'cm\nK\n.' + b'L123L\n.'))
    a(('LONG bad', b'cm\nK\n.' + b'L12x\n.'))
    a(('LONG too many digits', b'cm\nK\n.' + b'L' + b'1' * 5000 + b'\n.'))
    a(('FLOAT', b'cm\nK\n.' + b'F1.5\n.'))
    a(('FLOAT bad', b'cm\nK\n.' + b'F1.5x\n.'))
    a(('FLOAT overflow', b'cm\nK\n.' + b'F1e999\n.'))
    a(('FLOAT leading space', b'cm\nK\n.' + b'F 1.5\n.'))
    a(('LONG1 LONG4', CLS3 + b'\x80\x03\x8a\x02\xff\x7f\x8b\x01\x00\x00\x00\x05\x86.'))
    a(('LONG4 negative length', CLS3 + b'\x80\x03\x8b\xff\xff\xff\xff.'))
    a(('BINSTRING negative length', CLS3 + b'T\xff\xff\xff\xff.'))
    a(('BINBYTES truncated', CLS3 + b'\x80\x03B\x00\x00\x01\x00ab'))
    a(('GLOBAL at end', CLS3 + b'cmod'))
    a(('trailing bytes after second pickle', CLS3 + st3(C(OID) + b'Q') + b'garbage'))
    a(('.z prefix raw', b'.z' + b'x\x9c' + b'\x00' * 8))
    a(('.h prefix raw', b'.h' + CLS3.hex().encode()))
    a(('BINPERSID empty stack', CLS3 + b'Q.'))
    a(('REDUCE underflow', CLS3 + b'\x80\x03NR.'))
    a(('NEWOBJ underflow', CLS3 + b'\x80\x03N\x81.'))
    a(('APPEND underflow', CLS3 + b'\x80\x03Na.'))
    a(('SETITEM underflow', CLS3 + b'\x80\x03Ns.'))
    a(('proto 0..3 anywhere', b'\x80\x01cm\nK\n\x80\x03.\x80\x00N\x80\x02.'))
    # class metadata forms for get_pickle_metadata
    a(('meta GLOBAL no proto', G(b'mod.sub', b'Cls') + b'q\x00.N.'))
    a(('meta (c form', b'(' + G(b'mod', b'Cls') + b'q\x00)tq\x01.N.'))
    a(('meta proto 2 (c form', b'\x80\x02(' + G(b'mod', b'Cls') + b')tq\x01.N.'))
    a(('meta tuple form', b'\x80\x03' + X('mod') + X('Name') + b'\x86N\x86q\x00.N.'))
    a(('meta tuple pair', b'\x80\x03' + X('mod') + X('Name') + b'\x86q\x00.N.'))
    a(('meta tuple of 3', b'\x80\x03' + X('a') + X('b') + X('c') + b'\x87.N.'))
    a(('meta inner tuple of 3', b'\x80\x03' + X('a') + X('b') + X('c') + b'\x87N\x86.N.'))
    a(('meta tuple with ints', b'\x80\x03K\x01K\x02\x86N\x86.N.'))
    a(('meta tuple with bytes', b'\x80\x03' + C(b'ab') + C(b"c'd") + b'\x86N\x86.N.'))
    a(('meta empty tuple', b'\x80\x03).N.'))
    a(('meta None', b'\x80\x03N.N.'))
    a(('meta int', b'\x80\x03J\xff\xff\xff\xff.N.'))
    a(('meta str', b'\x80\x03' + X("it's") + b'.N.'))
    a(('meta list', b'\x80\x03](K\x01' + X('x') + b'e.N.'))
    a(('meta float', b'\x80\x03G\x3f\xf8\x00\x00\x00\x00\x00\x00.N.'))
    a(('meta bool', b'\x80\x03\x88.N.'))
    a(('meta persistent class ref', b'\x80\x03' + C(OID) + b'QN\x86.N.'))
    a(('meta unknown opcode', b'\x80\x03\xff.'))
    a(('meta GLOBAL invalid utf-8', G(b'mod\xff', b'Cls') + b'.N.'))
    a(('meta GLOBAL one newline', b'cmod\nCls'))
    a(('meta GLOBAL utf-8 name', b'\x80\x03' + G('m\xf6d'.encode(), 'Cl\xe4ss'.encode())
       + b'.N.'))
    a(('meta proto only', b'\x80'))
    a(('meta py2 string names', b'((' + U(b'mod') + U(b'Name') + b'tNt.N.'))
    a(('meta py2 non-ascii names', b'((' + U(b'm\xe9') + U(b'Name') + b'tNt.N.'))
    return c


# ---------------------------------------------------------------- mutations

def mutate(rng, data):
    d = bytearray(data)
    how = rng.randrange(6)
    if not d:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(d))
    if how == 0:
        d[i] = rng.randrange(256)
    elif how == 1:
        del d[i:]
    elif how == 2:
        del d[i]
    elif how == 3:
        d.insert(i, rng.choice(b'()0123abdehjlopqrstuNQRPK]}.\x85\x86\x87\x81\x80'))
    elif how == 4:
        j = rng.randrange(i, len(d))
        d[j:j] = d[i:j]
    else:
        d[i] = d[i] ^ (1 << rng.randrange(8))
    return bytes(d)


def main():
    # Optional: [seed] [mutations] for larger throwaway differential runs; the committed
    # vectors use the defaults.
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 20240531
    mutations = int(sys.argv[2]) if len(sys.argv) > 2 else 700
    with tempfile.TemporaryDirectory() as tmp:
        for n, (oid, data) in enumerate(plain_db(tmp)):
            add('zodb plain oid %s #%d' % (oid.hex(), n), data)
        for n, (oid, data) in enumerate(multi_db(tmp)):
            add('zodb multidb oid %s #%d' % (oid.hex(), n), data)
        for n, (oid, data) in enumerate(zlib_db(tmp)):
            plain = zc.zlibstorage.decompress(data)
            emit('zodb zlib raw oid %s #%d' % (oid.hex(), n), data,
                 untransformed=plain)
            add('zodb zlib untransformed oid %s #%d' % (oid.hex(), n), plain)
    for name, data in py2_cases():
        add(name, data)
    for name, data in hand_cases():
        add(name, data)
    rng = random.Random(seed)
    seeds = [d for _, d in BASES if len(d) <= 300]
    for k in range(mutations):
        data = rng.choice(seeds)
        for _ in range(rng.randrange(1, 4)):
            data = mutate(rng, data)
        emit('mutation %d' % k, data, refs_only=True)


if __name__ == '__main__':
    main()
