#!/usr/bin/env bash
# Disk full: every writer of ours run on a small tmpfs holding its initial state and
# exactly F bytes free, for F from nothing to more than the run needs. A run that cannot
# finish must exit non-zero naming the file it could not write, leave the old state
# (safety_lib.sh invariants) and no partial or temporary file; once space is freed, the
# next run completes.
#
#   testdata/oracle/conformance_diskfull.sh           short form (CI): 6 levels per writer
#   SAFETY_FULL=1 testdata/oracle/conformance_diskfull.sh   16 levels per writer
#
# Needs root (mount -t tmpfs); without it every case is SKIPped with the reason.
# Environment: ZODBFS, REPOZO, ORACLE_PY, CONFORMANCE_SEEDS, SAFETY_OPS, CONFORMANCE_WORK.
# Ends with `conformance-diskfull: N passed, M failed`.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/lib.sh"
# shellcheck source=/dev/null
source "$here/safety_lib.sh"
finish() { echo "conformance-diskfull: $CONF_PASSED passed, $CONF_FAILED failed"; [[ $CONF_FAILED == 0 ]]; exit; }
conf_oracle_python
conf_zodbfs >&2 || { conf_fail "build"; finish; }
ZODBFS="${ZODBFS_CMD[0]}"
REPOZO="${REPOZO:-$(dirname "$ZODBFS")/zodbfs-repozo}"
export ORACLE_PY ZODBFS REPOZO
work="${CONFORMANCE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zfs-diskfull.XXXXXX")}"
mkdir -p "$work"
seed="${CONFORMANCE_SEEDS:-$((RANDOM % 100000))}"
echo "conformance-diskfull seed: $seed (rerun with CONFORMANCE_SEEDS=$seed)"
sc_prepare "$work" "$seed" || { conf_fail "preparing the inputs"; finish; }
mnt="$work/mnt"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=1m tmpfs "$mnt" 2>/dev/null; then
    for op in ${SAFETY_OPS:-$SC_OPS_ALL}; do conf_skip "$op disk full" "mount -t tmpfs needs root"; done
    finish
fi
umount "$mnt"
t0=$SECONDS
PAGE=4096

# Bytes the run of OP adds at its peak: what it writes (new files and temporaries that
# coexist with the old state), measured on an unlimited tmpfs.
needed() {
    local op=$1
    mount -t tmpfs -o size=512m tmpfs "$mnt" || return 1
    sc_setup "$op" "$mnt/s"
    local before after
    before=$(df -B1 --output=used "$mnt" | tail -1)
    mapfile -t cmd < <(sc_cmd "$op" "$mnt/s")
    # Peak: the old state plus every new file at once (the data and its index before the
    # switch); measured as the total size of the final files plus the old state's.
    "${cmd[@]}" >/dev/null 2>&1
    after=$(df -B1 --output=used "$mnt" | tail -1)
    du -sb "$mnt/s" | cut -f1 > /dev/null
    umount "$mnt"
    local grow=$((after - before))
    # A replaced file (restore target, index, recover output, packed file) needs room
    # for the new copy while the old one still exists.
    case $op in
        restore-over) grow=$((grow + $(stat -c %s "$SC_IN/S1.fs") + $(stat -c %s "$SC_IN/S1.index"))) ;;
        pack-*) grow=$((grow + $(stat -c %s "$SC_IN/pack-${op#pack-}/Data.fs"))) ;;
        reindex) grow=$((grow + $(stat -c %s "$SC_IN/S1.index"))) ;;
        recover) grow=$((grow + $(stat -c %s "$SC_IN/R.fs"))) ;;
    esac
    echo $((grow < PAGE ? PAGE : grow))
}

run_level() {
    local op=$1 free=$2 need=$3 name=$4
    local state_size size
    mount -t tmpfs -o size=512m tmpfs "$mnt" || { conf_fail "$name: mount"; return; }
    sc_setup "$op" "$mnt/s"
    state_size=$(df -B1 --output=used "$mnt" | tail -1)
    umount "$mnt"
    # Room for the rerun once the filler goes: the state plus twice what a run needs.
    size=$(( (state_size + free + 2 * need + 16 * PAGE + PAGE - 1) / PAGE * PAGE ))
    mount -t tmpfs -o "size=$size" tmpfs "$mnt" || { conf_fail "$name: mount"; return; }
    sc_setup "$op" "$mnt/s"
    local avail fill
    avail=$(df -B1 --output=avail "$mnt" | tail -1)
    fill=$((avail - free))
    if ((fill > 0)); then
        fallocate -l "$fill" "$mnt/filler" 2>/dev/null || head -c "$fill" /dev/zero > "$mnt/filler"
    fi
    mapfile -t cmd < <(sc_cmd "$op" "$mnt/s")
    local errs="$work/errs" rc
    : > "$errs"
    "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/run.err"
    rc=$?
    sc_check "$op" "$mnt/s" after-kill 2>>"$errs"
    if [[ $rc != 0 ]]; then
        grep -q "$mnt/s" "$SC_SCRATCH/run.err" ||
            echo "    the message names no file of the run: $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
        local left
        left=$(sc_temps "$mnt/s")
        [[ -z $left ]] || echo "    left after the failed run: $left" >> "$errs"
        FAILED_RUNS=$((FAILED_RUNS + 1))
    fi
    rm -f "$mnt/filler"
    "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/rerun.err" ||
        echo "    the next run failed: $(head -c 300 "$SC_SCRATCH/rerun.err")" >> "$errs"
    sc_check "$op" "$mnt/s" after-rerun 2>>"$errs"
    umount "$mnt"
    if [[ -s $errs ]]; then conf_fail "$name (exit $rc)" "$errs"; else conf_pass "$name (exit $rc)"; fi
}

FAILED_RUNS=0
if [[ ${SAFETY_FULL:-0} == 1 ]]; then
    fractions="0 1 2 4 8 16 24 32 40 48 56 60 62 63 64 80"
else
    fractions="0 1 16 32 60 80"
fi
for op in ${SAFETY_OPS:-$SC_OPS_ALL}; do
    need=$(needed "$op") || { conf_fail "$op: measuring"; continue; }
    for f in $fractions; do
        # Levels in 64ths of what the run needs (0: a single page); 64 and above: enough.
        free=$(( f == 0 ? 0 : need * f / 64 ))
        (( f == 1 )) && free=$PAGE
        run_level "$op" "$free" "$need" "$op free=$free of $need"
    done
done
echo "conformance-diskfull: $FAILED_RUNS runs ran out of space"
echo "conformance-diskfull time: $((SECONDS - t0)) s"
[[ $CONF_FAILED == 0 && -z ${CONFORMANCE_WORK:-} ]] && rm -rf "$work"
finish
