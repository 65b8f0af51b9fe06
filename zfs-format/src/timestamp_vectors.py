#!/usr/bin/env python3
"""Writes the golden vectors for `timestamp.rs` (read by its tests with include_str!).

Run it with a Python that has `persistent` installed (it comes with ZODB):

    python zfs-format/src/timestamp_vectors.py [CORPUS_DIR] > zfs-format/src/timestamp_vectors.txt

CORPUS_DIR, if given, is a directory of real Data.fs files (the project's is
"${ZFS_CORPUS:-../shared/corpus/real}", relative to the repository); the tids of
their transactions are added to the byte vectors.

Every output line is tab-separated; the first field says what it is:

    B  raw-hex  year  month  day  hour  minute  second  str  timeTime  parts
         what persistent reports for TimeStamp(raw); `parts` is the raw hex of
         TimeStamp(year, month, day, hour, minute, second), or `ERR <message>`
    P  year  month  day  hour  minute  seconds  result
         TimeStamp(year, month, day, hour, minute, seconds): raw hex or `ERR <message>`
    L  a-hex  b-hex  result
         TimeStamp(a).laterThan(TimeStamp(b)): raw hex or `ERR <message>`
    U  t  result
         the stop tid FileStorage.pack computes for the float time t:
         TimeStamp(*time.gmtime(t)[:5] + (t % 60,)), raw hex or `ERR <exception type>: <message>`

Floats are written with repr(), which reads back to the same double.
"""

import os
import random
import struct
import sys
import time

from persistent.TimeStamp import TimeStamp

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_MONTH = 31 * MINUTES_PER_DAY
MINUTES_PER_YEAR = 12 * MINUTES_PER_MONTH


def minutes(y, mo, d, h=0, mi=0):
    """The high word of a tid, without any range checks (so junk dates are possible)."""
    return ((((y - 1900) * 12 + mo - 1) * 31 + d - 1) * 24 + h) * 60 + mi


def raw(mins, low):
    return struct.pack(">II", mins & 0xFFFFFFFF, low & 0xFFFFFFFF)


def attempt(f):
    try:
        return f().raw().hex()
    except Exception as e:  # the message is part of the vector
        return "ERR " + str(e)


def byte_line(b):
    t = TimeStamp(b)
    parts = attempt(
        lambda: TimeStamp(t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second())
    )
    fields = [
        "B",
        b.hex(),
        str(t.year()),
        str(t.month()),
        str(t.day()),
        str(t.hour()),
        str(t.minute()),
        repr(t.second()),
        str(t),
        repr(t.timeTime()),
        parts,
    ]
    return "\t".join(fields)


def real_tids(corpus):
    """Tids of the transactions of each file: the first header is at 4, the next at pos+tlen+8."""
    out = []
    for name in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, name), "rb") as f:
            data = f.read()
        pos, tids = 4, []
        while pos + 16 <= len(data):
            tid = data[pos:pos + 8]
            (tlen,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            tids.append(tid)
            if tlen < 23:
                break
            pos += tlen + 8
        # The first few and the last few of each file are plenty.
        out.extend(tids[:6] + tids[-3:])
    return list(dict.fromkeys(out))


def byte_vectors(rng, corpus):
    vs = [b"\0" * 8, b"\xff" * 8, b"\0" * 4 + b"\xff" * 4, b"\xff" * 4 + b"\0" * 4]
    vs.append(bytes.fromhex("03f58e0022222222"))
    vs += [rng.randbytes(8) for _ in range(150)]
    # Plausible tids: random minutes in 1990..2040 with random low words.
    lo, hi = minutes(1990, 1, 1), minutes(2040, 1, 1)
    vs += [raw(rng.randrange(lo, hi), rng.getrandbits(32)) for _ in range(40)]
    # Seconds that print near 60, and the rounding boundary of the sixth decimal there.
    for low in (0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFF8, 0xFFFFFFF0, 0xFFFFFFBB, 0xFFFFFFBA):
        vs.append(raw(minutes(2024, 1, 1), low))
    for low in range(4294967250, 4294967272, 3):
        vs.append(raw(minutes(2011, 7, 9, 13, 59), low))
    # Exact ties at the sixth decimal: seconds = j * 15 / 128 with j odd.
    for j in list(range(1, 40, 2)) + list(range(471, 512, 2)):
        vs.append(raw(minutes(2001, 2, 3), j << 23))
        vs.append(raw(minutes(2001, 2, 3), (j << 23) + 1))
        vs.append(raw(minutes(2001, 2, 3), (j << 23) - 1))
    # Month ends, leap years, and days that no calendar has (junk, or damaged files).
    for y in (1900, 1904, 1999, 2000, 2023, 2024, 2100, 2400, 9917):
        for mo, d in ((1, 31), (2, 28), (2, 29), (2, 30), (2, 31), (4, 30), (4, 31), (12, 31)):
            vs.append(raw(minutes(y, mo, d, 23, 59), 0xFFFFFFFF))
            vs.append(raw(minutes(y, mo, d, 12, 0), rng.getrandbits(32)))
    vs.append(raw(0xFFFFFFFF, 0))
    vs.append(raw(minutes(9917, 10, 14, 4, 15), 0))
    if corpus:
        vs += real_tids(corpus)
    return list(dict.fromkeys(vs))


def parts_vectors(rng):
    cases = []
    for sec in (0.0, 8.0, -1.0, -0.5, 59.9999999, 59.99999999999999, 60.0, 61.0, 1e30, -1e30,
                float("nan"), float("inf"), float("-inf"), 2.0 ** 33, 1e19, -1e19,
                2.0 ** 63 * 60 / 2 ** 32, 2.0 ** 64 * 60 / 2 ** 32, 0.1171875, 1e-300):
        cases.append((2024, 1, 1, 0, 0, sec))
    cases += [
        (1899, 1, 1, 0, 0, 0.0), (1900, 1, 1, 0, 0, 0.0), (9917, 10, 14, 4, 15, 59.0),
        (9917, 10, 14, 4, 16, 0.0), (9917, 12, 31, 23, 59, 0.0), (9918, 1, 1, 0, 0, 0.0),
        (10000, 1, 1, 0, 0, 0.0), (2147483647, 12, 31, 23, 59, 30.0), (-5, 1, 1, 0, 0, 0.0),
        (2024, 2, 29, 0, 0, 0.0), (2024, 2, 30, 0, 0, 0.0), (2023, 2, 29, 0, 0, 0.0),
        (2000, 2, 29, 0, 0, 0.0), (1900, 2, 29, 0, 0, 0.0), (2100, 2, 29, 0, 0, 0.0),
        (2024, 4, 31, 0, 0, 0.0), (2024, 4, 0, 0, 0, 0.0), (2024, 13, 1, 0, 0, 0.0),
        (2024, 0, 1, 0, 0, 0.0), (2024, 1, 1, 24, 0, 0.0), (2024, 1, 1, -1, 0, 0.0),
        (2024, 1, 1, 0, 60, 0.0), (2024, 1, 1, 0, -1, 0.0), (2024, 12, 31, 23, 59, 59.5),
    ]
    for _ in range(60):
        cases.append((rng.randrange(1900, 2200), rng.randrange(1, 13), rng.randrange(1, 32),
                      rng.randrange(24), rng.randrange(60), rng.uniform(0, 60)))
    lines = []
    for y, mo, d, h, mi, s in cases:
        res = attempt(lambda: TimeStamp(y, mo, d, h, mi, s))
        lines.append("\t".join(["P", str(y), str(mo), str(d), str(h), str(mi), repr(s), res]))
    return lines


def later_vectors(rng, bytes_vs):
    pairs = []
    for _ in range(60):
        a, b = rng.choice(bytes_vs), rng.choice(bytes_vs)
        pairs += [(a, b), (b, b)]
    for mins in (minutes(2024, 1, 1), minutes(2024, 1, 1, 23, 59), minutes(2024, 1, 31, 23, 59),
                 minutes(2024, 2, 28, 23, 59), minutes(2024, 2, 29, 23, 59),
                 minutes(2023, 2, 28, 23, 59), minutes(2024, 2, 30, 23, 59),
                 minutes(2024, 2, 31, 23, 59), minutes(2024, 4, 30, 23, 59),
                 minutes(2024, 4, 31, 23, 59), minutes(2024, 12, 31, 23, 59),
                 minutes(9917, 10, 14, 4, 15), minutes(9917, 12, 31, 23, 59), 0xFFFFFFFF):
        for low in (0, 0x12345678, 0xFFFFFEFF, 0xFFFFFFFE, 0xFFFFFFFF):
            b = raw(mins, low)
            pairs += [(raw(0, 0), b), (b, b), (raw(mins, low + 1), b)]
    pairs = list(dict.fromkeys(pairs))
    return ["\t".join(["L", a.hex(), b.hex(), attempt(lambda: TimeStamp(a).laterThan(TimeStamp(b)))])
            for a, b in pairs]


def pack_stop(t):
    # FileStorage.pack's own expression for the stop tid.
    try:
        return TimeStamp(*time.gmtime(t)[:5] + (t % 60,)).raw().hex()
    except Exception as e:
        return "ERR %s: %s" % (type(e).__name__, e)


def unix_vectors(rng):
    ts = [0.0, -0.0, 1e-300, -1e-300, -1e-20, -0.5, -1.0, 59.99999999999999, -59.99999999999999,
          60.0, -60.0, 1700000001.0, 1700000000.9999998, 4294967295.9999995,
          -2208988800.0, -2208988800.5, -2208988799.5, -2208988801.0, -2208988800.000001,
          253402300799.0, 253402300800.0, 253402300799.99997, 1e15, 1e16, 6.7e16, 6.78e16, 1e17,
          9.3e18, 1e19, -1e19, float("nan"), float("inf"), float("-inf"),
          951782400.0, 951868799.5, 4107542399.75, 4107542400.25, 946684799.999999,
          # the last second (to the nearest double, 8 s apart here) of the last year a C int
          # can hold, and of the last year glibc's gmtime can give
          67767976233532792.0, 67767976233532800.0, 67768036191676792.0, 67768036191676800.0]
    for _ in range(120):
        ts.append(rng.uniform(-2.3e9, 4.2e9))
    for _ in range(30):
        ts.append(float(rng.randrange(-2208988800, 4102444800)))
    for _ in range(30):
        ts.append(rng.randrange(-36000000, 70000000) * 60.0 + rng.choice((-1e-9, 1e-9, -1e-6, 0.5)))
    for _ in range(40):
        ts.append(10 ** rng.uniform(9.5, 16.8))
    for _ in range(20):
        ts.append(rng.uniform(1e9, 2e9) + rng.random() * 1e-3)
    return ["\t".join(["U", repr(t), pack_stop(t)]) for t in ts]


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else None
    rng = random.Random(20240229)
    bytes_vs = byte_vectors(rng, corpus)
    out = [byte_line(b) for b in bytes_vs]
    out += parts_vectors(rng)
    out += later_vectors(rng, bytes_vs)
    out += unix_vectors(rng)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
