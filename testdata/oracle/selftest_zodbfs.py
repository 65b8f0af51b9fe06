#!/usr/bin/env python3
"""A stand-in for zodbfs that answers with ZODB itself: tests the harness.

  ZODBFS="$(testdata/oracle/setup.sh | tail -n1) testdata/oracle/selftest_zodbfs.py" \\
      testdata/oracle/conformance.sh

Supports the subcommands the read checks use: `reindex --output OUT FILE`,
`dump FILE`, `tail [-n N] FILE`, `records FILE`, `info --json FILE`.
With ZFS_SELFTEST_BREAK=<subcommand> that subcommand's answer is spoiled, so
the FAIL paths of the harness can be seen too.
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected  # noqa: E402


def answers(path):
    """ZODB's answers for path, computed once per file content."""
    with open(path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    cache = os.path.join(tempfile.gettempdir(), "zfs-selftest-cache", digest)
    if not os.path.exists(os.path.join(cache, "info.json")):
        tmp = cache + ".tmp%d" % os.getpid()
        expected.produce(path, tmp)
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(tmp, cache)
    return cache


def main(argv):
    cmd, args = argv[0], argv[1:]
    broken = os.environ.get("ZFS_SELFTEST_BREAK") == cmd
    if cmd == "reindex":
        out = args[args.index("--output") + 1]
        d = answers(args[-1])
        shutil.copyfile(os.path.join(d, "index"), out)
        if broken:
            with open(out, "ab") as f:
                f.write(b"\0")
        return 0
    d = answers(args[-1])
    if cmd == "info":
        with open(os.path.join(d, "info.json")) as f:
            info = json.load(f)
        if broken:
            info["objects"] += 1
        print(json.dumps(info))
        return 0
    name = {"dump": "fsdump", "records": "records"}.get(cmd)
    if cmd == "tail":
        name = "fstail-all" if "-n" in args else "fstail"
    if name is None:
        print("unknown command %s" % cmd, file=sys.stderr)
        return 2
    with open(os.path.join(d, name + ".txt"), encoding="utf-8") as f:
        text = f.read()
    if broken:
        text += "spoiled\n"
    sys.stdout.write(text)
    return 1 if os.path.exists(os.path.join(d, name + ".err")) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
