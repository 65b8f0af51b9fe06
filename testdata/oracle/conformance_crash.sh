#!/usr/bin/env bash
# Crash consistency: every writer of ours killed with SIGKILL at its rename, fsync,
# unlink, link, truncate and write boundaries (strace fault injection: the process dies
# just before its N-th call), and at random moments; after each kill the invariants of
# safety_lib.sh hold, and the next run completes and leaves no temporary file.
#
#   testdata/oracle/conformance_crash.sh            short form (CI): up to 4 points per
#                                                   call kind, 3 random kills per writer
#   SAFETY_FULL=1 testdata/oracle/conformance_crash.sh   every call of every kind (writes
#                                                   sampled at up to 60 points), 20 random
#
# Environment: ZODBFS, REPOZO (default: beside ZODBFS), ORACLE_PY, CONFORMANCE_SEEDS (one
# seed), SAFETY_OPS (a subset of the writers), CONFORMANCE_WORK.
# Ends with `conformance-crash: N passed, M failed`.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/lib.sh"
# shellcheck source=/dev/null
source "$here/safety_lib.sh"
finish() { echo "conformance-crash: $CONF_PASSED passed, $CONF_FAILED failed"; [[ $CONF_FAILED == 0 ]]; exit; }
command -v strace >/dev/null || { conf_fail "strace is not installed"; finish; }
conf_oracle_python
conf_zodbfs >&2 || { conf_fail "build"; finish; }
ZODBFS="${ZODBFS_CMD[0]}"
REPOZO="${REPOZO:-$(dirname "$ZODBFS")/zodbfs-repozo}"
export ORACLE_PY ZODBFS REPOZO
work="${CONFORMANCE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zfs-crash.XXXXXX")}"
mkdir -p "$work"
seed="${CONFORMANCE_SEEDS:-$((RANDOM % 100000))}"
echo "conformance-crash seed: $seed (rerun with CONFORMANCE_SEEDS=$seed)"
sc_prepare "$work" "$seed" || { conf_fail "preparing the inputs"; finish; }
full="${SAFETY_FULL:-0}"
if [[ $full == 1 ]]; then per_kind=1000000; writes=60; randoms=20; else per_kind=4; writes=4; randoms=3; fi
KINDS="rename,renameat,renameat2,fsync,fdatasync,unlink,unlinkat,link,linkat,ftruncate,write,pwrite64,copy_file_range"
RANDOM_SET="read,write,pread64,pwrite64,openat,close,mmap,munmap,lseek,newfstatat,fstat,copy_file_range,rename,renameat2,fsync,unlink,unlinkat,linkat,flock,ftruncate"
t0=$SECONDS
KILLED=0
CASES=0

# The points at which to kill: "kind n" lines. Every call of the rare kinds (renames,
# fsyncs, unlinks, links, truncates) up to per_kind; writes sampled evenly.
points() {
    local op=$1 dir=$2 counts
    sc_setup "$op" "$dir"
    mapfile -t cmd < <(sc_cmd "$op" "$dir")
    counts="$work/counts.$op"
    strace -f -qq -c -o "$counts" -e trace="$KINDS" -- "${cmd[@]}" >/dev/null 2>&1
    # strace -c: "% time, seconds, usecs/call, calls, [errors,] syscall".
    awk 'NF >= 5 && $4 ~ /^[0-9]+$/ && $NF != "total" { print $NF, $4 }' "$counts" |
    while read -r kind n; do
        local lim=$per_kind
        case $kind in write|pwrite64|copy_file_range) lim=$writes ;; esac
        if (( n <= lim )); then
            seq 1 "$n" | sed "s/^/$kind /"
        else
            awk -v n="$n" -v lim="$lim" -v k="$kind" 'BEGIN { for (i = 0; i < lim; i++) print k, 1 + int(i * (n - 1) / (lim - 1)) }' | sort -u -k2n
        fi
    done
}

run_case() {
    local op=$1 kind=$2 n=$3 name=$4
    local dir="$work/case"
    sc_setup "$op" "$dir"
    mapfile -t cmd < <(sc_cmd "$op" "$dir")
    # strace dies of the signal that killed its tracee; in a subshell that goes on after
    # it, bash's "Killed" notice goes to /dev/null.
    local rc
    rc=$( (strace -f -qq -o /dev/null -e trace="$kind" -e inject="$kind:signal=KILL:when=$n" -- \
        "${cmd[@]}" >/dev/null 2>&1; echo $?) 2>/dev/null)
    if [[ $rc == 137 ]]; then KILLED=$((KILLED + 1)); fi
    CASES=$((CASES + 1))
    local errs="$work/errs"
    : > "$errs"
    sc_check "$op" "$dir" after-kill 2>>"$errs"
    "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/rerun.err" || echo "    the next run failed: $(head -c 300 "$SC_SCRATCH/rerun.err")" >> "$errs"
    sc_check "$op" "$dir" after-rerun 2>>"$errs"
    if [[ -s $errs ]]; then conf_fail "$name" "$errs"; else conf_pass "$name"; fi
}

for op in ${SAFETY_OPS:-$SC_OPS_ALL}; do
    while read -r kind n; do
        [[ -n $kind ]] || continue
        run_case "$op" "$kind" "$n" "$op kill@$kind#$n"
    done < <(points "$op" "$work/probe")
    # Random moments: the N-th call of any of a broad set of calls.
    sc_setup "$op" "$work/probe"
    mapfile -t cmd < <(sc_cmd "$op" "$work/probe")
    strace -f -qq -c -o "$work/counts-all" -e trace="$RANDOM_SET" -- "${cmd[@]}" >/dev/null 2>&1
    total=$(awk '$NF == "total" {print $4}' "$work/counts-all")
    [[ $total =~ ^[0-9]+$ ]] && (( total > 1 )) || total=50
    for ((r = 0; r < randoms; r++)); do
        n=$((1 + (RANDOM * 32768 + RANDOM) % total))
        run_case "$op" "$RANDOM_SET" "$n" "$op kill@random#$n"
    done
done
echo "conformance-crash: $KILLED of $CASES runs were killed before they finished"
echo "conformance-crash time: $((SECONDS - t0)) s"
[[ $CONF_FAILED == 0 && -z ${CONFORMANCE_WORK:-} ]] && rm -rf "$work"
finish
