#!/usr/bin/env python3
"""Comparisons for the conformance scripts that plain cmp cannot do.

usage: compare.py records EXPECTED_records.txt ACTUAL_records.txt
       compare.py info EXPECTED_info.json ACTUAL_json_file

records: the files must be equal except at the positions where ZODB printed
  refs=ERROR:...; each such position is printed as `ZODB-FAILED zodb: <line>`
  followed by `ZODB-FAILED ours: <line>` (or `ours: (missing)`).
info: ACTUAL must be a JSON object whose "size", "transactions", "objects"
  and "last_tid" equal EXPECTED's (last_tid as 16 hex digits; an integer is
  accepted too).
Exit status 0 when equal, 1 when not (a description of the difference is
printed), 2 on bad input.
"""
import difflib
import json
import re
import sys

POS = re.compile(r"^pos=(\d+) ")


def by_pos(lines):
    out = {}
    for line in lines:
        m = POS.match(line)
        if m:
            out.setdefault(int(m.group(1)), line)
    return out


def records(expected_path, actual_path):
    with open(expected_path, encoding="utf-8") as f:
        expected = f.read().splitlines()
    with open(actual_path, encoding="utf-8", errors="replace") as f:
        actual = f.read().splitlines()
    failed = [line for line in expected if " refs=ERROR:" in line]
    failed_pos = set(by_pos(failed))
    ours = by_pos(actual)
    for line in failed:
        pos = int(POS.match(line).group(1))
        print("ZODB-FAILED zodb: " + line)
        print("ZODB-FAILED ours: " + ours.get(pos, "(missing)"))

    def keep(line):
        m = POS.match(line)
        return not (m and int(m.group(1)) in failed_pos)

    e = [line for line in expected if keep(line)]
    a = [line for line in actual if keep(line)]
    if e == a:
        return 0
    print("records differ (%d expected lines, %d actual, ZODB failures left out)"
          % (len(e), len(a)))
    for n, line in enumerate(difflib.unified_diff(e, a, "zodb", "ours", lineterm="")):
        if n >= 30:
            print("...")
            break
        print(line)
    return 1


def info(expected_path, actual_path):
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    try:
        with open(actual_path, encoding="utf-8") as f:
            actual = json.load(f)
    except ValueError as e:
        print("not JSON: %s" % e)
        return 1
    if not isinstance(actual, dict):
        print("not a JSON object")
        return 1
    bad = 0
    for key in ("size", "transactions", "objects", "last_tid"):
        want, got = expected[key], actual.get(key)
        if key == "last_tid" and isinstance(got, int) and not isinstance(got, bool):
            got = "%016x" % got
        if key == "last_tid" and isinstance(got, str):
            got = got.lower()
        if got != want or type(got) is not type(want):
            print("%s: zodb %r, ours %r" % (key, want, got))
            bad = 1
    return bad


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("records", "info"):
        print(__doc__, file=sys.stderr)
        return 2
    fn = records if sys.argv[1] == "records" else info
    return fn(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
