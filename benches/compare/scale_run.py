#!/usr/bin/env python3
"""Run one job inside a memory cgroup and measure it; or summarise such runs.

usage:
  scale_run.py run --label L --limit BYTES|none [--cold] --log RUNS.jsonl
                   [--stdout FILE] [--bytes-read N] [--bytes-written N] [--timeout S] -- CMD...
  scale_run.py report RUNS.jsonl

`run` (as root): with --cold, syncs and drops the page cache first; makes a child memory
cgroup of this process's own (cgroup v1 `memory` controller or cgroup v2, whichever is
mounted), with the limit given (or none), puts CMD in it and samples every 10 ms: the
job's RssAnon, RssFile and VmHWM (/proc/PID/status) and the cgroup's anonymous and page
cache charge. Appends one JSON line to RUNS.jsonl: wall, user and system time, exit
status, peak anonymous memory (sampled), peak RSS (the kernel's maxrss), major and minor
page faults, the cgroup's peak charge, how often it hit its limit (failcnt, or the
`max` events of v2) and OOM kills. The cgroup is removed afterwards.

`report` prints the runs as a Markdown table: rate (bytes read and written per second),
for cold runs the share of the disk's floor (the time `dd` needs to read what the job reads,
plus the time to write what it writes at the measured write rate, over the job's time;
for the pack with GC also against a floor of two reads, its scan's and its copy's), and
time per GB against the same job and mode on the 1 GB file.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time


def cgroup_root():
    """(version, directory of this process's memory cgroup)."""
    with open("/proc/self/cgroup") as f:
        lines = [l.strip().split(":", 2) for l in f if l.strip()]
    v1 = [l for l in lines if "memory" in l[1].split(",")]
    if v1 and os.path.isdir("/sys/fs/cgroup/memory"):
        return 1, "/sys/fs/cgroup/memory" + v1[0][2]
    v2 = [l for l in lines if l[0] == "0"]
    if v2 and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return 2, "/sys/fs/cgroup" + v2[0][2]
    sys.exit("no memory cgroup controller found (v1 memory or v2)")


def write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def kv(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


class Cgroup:
    def __init__(self, limit):
        self.version, parent = cgroup_root()
        self.dir = os.path.join(parent, "zfs-scale-%d-%d" % (os.getpid(), time.monotonic_ns()))
        if self.version == 2:
            ctl = read(os.path.join(parent, "cgroup.subtree_control"))
            if "memory" not in ctl.split():
                write(os.path.join(parent, "cgroup.subtree_control"), "+memory")
        os.mkdir(self.dir)
        if limit is not None:
            if self.version == 1:
                write(os.path.join(self.dir, "memory.limit_in_bytes"), limit)
            else:
                write(os.path.join(self.dir, "memory.max"), limit)
                write(os.path.join(self.dir, "memory.swap.max"), 0)

    def procs(self):
        return os.path.join(self.dir, "cgroup.procs")

    def charge(self):
        """(anonymous bytes, page cache bytes) charged now."""
        s = kv(read(os.path.join(self.dir, "memory.stat")))
        if self.version == 1:
            return s.get("total_rss", s.get("rss", 0)), s.get("total_cache", s.get("cache", 0))
        return s.get("anon", 0), s.get("file", 0)

    def final(self):
        if self.version == 1:
            oom = kv(read(os.path.join(self.dir, "memory.oom_control")))
            return {
                "cg_peak": int(read(os.path.join(self.dir, "memory.max_usage_in_bytes"), "0") or 0),
                "cg_limit_hits": int(read(os.path.join(self.dir, "memory.failcnt"), "0") or 0),
                "cg_oom_kills": oom.get("oom_kill", 0),
            }
        ev = kv(read(os.path.join(self.dir, "memory.events")))
        return {
            "cg_peak": int(read(os.path.join(self.dir, "memory.peak"), "0") or 0),
            "cg_limit_hits": ev.get("max", 0),
            "cg_oom_kills": ev.get("oom_kill", 0),
        }

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)


def status_kb(pid):
    s = read("/proc/%d/status" % pid)
    out = {}
    for line in s.splitlines():
        k, _, v = line.partition(":")
        if k in ("RssAnon", "RssFile", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


def drop_caches():
    subprocess.run(["sync"], check=True)
    write("/proc/sys/vm/drop_caches", 3)


def parse_limit(s):
    if s == "none":
        return None
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1].upper() in mult:
        return int(float(s[:-1]) * mult[s[-1].upper()])
    return int(s)


def run(a):
    limit = parse_limit(a.limit)
    if a.cold:
        drop_caches()
    cg = Cgroup(limit)
    out = open(a.stdout, "wb") if a.stdout else subprocess.DEVNULL
    err_path = (a.stdout or "/tmp/scale-run") + ".stderr"
    err = open(err_path, "wb")
    procs = cg.procs()

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    t0 = time.monotonic()
    p = subprocess.Popen(a.cmd, stdout=out, stderr=err, preexec_fn=enter)
    peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0, "cg_anon": 0, "cg_cache": 0}
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if a.timeout and time.monotonic() - t0 > a.timeout and not timed_out:
            timed_out = True
            p.kill()
        s = status_kb(p.pid)
        for k, v in s.items():
            peak[k] = max(peak[k], v)
        anon, cache = cg.charge()
        peak["cg_anon"] = max(peak["cg_anon"], anon)
        peak["cg_cache"] = max(peak["cg_cache"], cache)
        time.sleep(0.01)
    wall = time.monotonic() - t0
    final = cg.final()
    cg.remove()
    rec = {
        "label": a.label,
        "limit": a.limit,
        "cold": a.cold,
        "cmd": " ".join(a.cmd),
        "exit": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "wall": round(wall, 3),
        "user": round(ru.ru_utime, 3),
        "sys": round(ru.ru_stime, 3),
        "maxrss_kb": ru.ru_maxrss,
        "peak_anon_kb": peak["RssAnon"],
        "peak_file_kb": peak["RssFile"],
        "cg_peak_anon": peak["cg_anon"],
        "cg_peak_cache": peak["cg_cache"],
        "majflt": ru.ru_majflt,
        "minflt": ru.ru_minflt,
        "bytes_read": a.bytes_read,
        "bytes_written": a.bytes_written,
        "loadavg": read("/proc/loadavg").split()[0],
    }
    rec.update(final)
    with open(a.log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))
    return rec["exit"]


def report(a):
    runs = [json.loads(l) for l in open(a.log) if l.strip()]
    # Disk rates measured in this run: read (dd of the file, cold) and write.
    rate = {}
    for r in runs:
        if r["label"].startswith("dd-read ") or r["label"].startswith("dd-write "):
            kind, size = r["label"].split()[:2]
            rate[(kind, size)] = (r["bytes_read"] or r["bytes_written"]) / r["wall"]
    base = {}
    for r in runs:
        job, size, mode = r["label"].split()[:3] if len(r["label"].split()) >= 3 else (r["label"], "", "")
        base[(job, size, mode)] = r
    print("| job | file | mode | wall s | CPU s | rate MB/s | of floor | time/GB vs 1 GB | peak anon MB | peak RSS MB | major faults | limit hits | exit |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        parts = r["label"].split()
        if len(parts) < 3:
            continue
        job, size, mode = parts[:3]
        io_bytes = r["bytes_read"] + r["bytes_written"]
        mbps = io_bytes / 1e6 / r["wall"] if io_bytes else 0
        floor = ""
        rd = rate.get(("dd-read", size))
        wr = rate.get(("dd-write", size))
        # The floor is the disk's: it says something only when the job reads from the disk.
        if rd and mode == "cold" and not job.startswith("dd"):
            t_write = r["bytes_written"] / wr if wr and r["bytes_written"] else 0
            t_floor = r["bytes_read"] / rd + t_write
            floor = "%.0f%%" % (100 * t_floor / r["wall"])
            if job == "pack":
                # With GC the pack reads the file twice (its scan, then its copy): see
                # BENCHMARKS.md for why the copy cannot read less of a file that does not
                # fit; its share of that floor too.
                floor += " (two reads: %.0f%%)" % (100 * (2 * r["bytes_read"] / rd + t_write) / r["wall"])
        ratio = ""
        one = base.get((job, "1G", mode))
        if size != "1G" and one and one["wall"] > 0 and one["bytes_read"]:
            per = r["wall"] / max(r["bytes_read"], 1)
            per1 = one["wall"] / max(one["bytes_read"], 1)
            ratio = "%.2fx" % (per / per1)
        print("| %s | %s | %s | %.1f | %.1f | %.0f | %s | %s | %.0f | %.0f | %d | %d | %d |" % (
            job, size, mode, r["wall"], r["user"] + r["sys"], mbps, floor, ratio,
            r["peak_anon_kb"] / 1024, r["maxrss_kb"] / 1024, r["majflt"],
            r.get("cg_limit_hits", 0), r["exit"]))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--label", required=True)
    r.add_argument("--limit", default="none")
    r.add_argument("--cold", action="store_true")
    r.add_argument("--log", required=True)
    r.add_argument("--stdout")
    r.add_argument("--bytes-read", type=int, default=0)
    r.add_argument("--bytes-written", type=int, default=0)
    r.add_argument("--timeout", type=float, default=0, help="kill the job after this many seconds")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("report")
    p.add_argument("log")
    a = ap.parse_args()
    if a.what == "run":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        sys.exit(run(a))
    report(a)


if __name__ == "__main__":
    main()
