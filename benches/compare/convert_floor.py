"""The floor of `zodbfs convert`: PostgreSQL loading the same rows from files with its own
COPY, into a fresh RelStorage schema with the same keys, indexes and foreign keys dropped
before and re-created after.

    convert_floor.py SRC_DSN DST_DSN hp|hf DIR

SRC_DSN is a database our conversion filled; its rows are written by the server into
DIR/<table>.bin (binary COPY), then loaded into DST_DSN (which must hold a fresh RelStorage
schema of the same mode), one table after another on one connection. Prints
`copy_from SECONDS`, `constraints SECONDS`, `bytes N`.
"""
import os
import sys
import time

import psycopg2

src, dst, mode, d = sys.argv[1:5]
tables = {
    "hp": [("transaction", "WHERE tid <> 0"), ("object_state", ""), ("current_object", ""),
           ("blob_chunk", "")],
    "hf": [("object_state", ""), ("blob_chunk", "")],
}[mode]
names = [t for t, _ in tables]

c = psycopg2.connect(src)
c.autocommit = True
cur = c.cursor()
total = 0
for t, where in tables:
    path = os.path.join(d, t + ".bin")
    cur.execute(f"COPY (SELECT * FROM {t} {where}) TO '{path}' (FORMAT binary)")
    total += os.path.getsize(path)
c.close()

c = psycopg2.connect(dst)
cur = c.cursor()
cur.execute("""
    SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
    WHERE c.relname = ANY(%s) AND k.contype IN ('p', 'u', 'f')""", (names,))
cons = cur.fetchall()
cur.execute("""
    SELECT i.relname, pg_get_indexdef(x.indexrelid)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    WHERE t.relname = ANY(%s)
    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)""", (names,))
idx = cur.fetchall()
for t, n, ty, _ in sorted(cons, key=lambda r: r[2] != "f"):
    cur.execute(f'ALTER TABLE "{t}" DROP CONSTRAINT "{n}"')
for n, _ in idx:
    cur.execute(f'DROP INDEX "{n}"')
c.commit()
t0 = time.time()
for t, _ in tables:
    cur.execute(f"COPY {t} FROM '{os.path.join(d, t + '.bin')}' (FORMAT binary)")
c.commit()
t1 = time.time()
for t, n, ty, df in sorted(cons, key=lambda r: r[2] == "f"):
    cur.execute(f'ALTER TABLE ONLY "{t}" ADD CONSTRAINT "{n}" {df}')
for n, df in idx:
    cur.execute(df)
c.commit()
t2 = time.time()
print(f"copy_from {t1 - t0:.2f}")
print(f"constraints {t2 - t1:.2f}")
print(f"bytes {total}")
