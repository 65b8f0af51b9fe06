#!/usr/bin/env bash
# The live conformance suite (CI runs it): our zodbfs against Python ZODB.
#
#   testdata/oracle/conformance.sh
#
# 1. setup.sh makes the pinned ZODB virtualenv; zodbfs is built in release
#    mode (or $ZODBFS is used);
# 2. fresh files are generated with random seeds (printed; set
#    CONFORMANCE_SEEDS to repeat a run), and ZODB's answers are computed for
#    them, for the committed fixtures and for the real corpus;
# 3. every check-*.sh script in this directory is sourced and its function
#    check_<name> (check-read.sh -> check_read) is run; then every standalone
#    conformance_<name>.sh script runs as a child (its own seeds and work
#    directory) and the numbers of its final `...: N passed, M failed` line
#    are added (CONFORMANCE_SKIP="repozo pack" leaves those out);
# 4. the last line is `conformance: N passed, M failed`; the exit status is
#    non-zero when M > 0.
#
# To add checks (repozo, pack, ...): write check-<name>.sh defining
# check_<name>, using the helpers of lib.sh (conf_inputs, conf_run,
# conf_same_text, conf_pass, conf_fail, ...). See check-read.sh.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

t0=$SECONDS
if conf_prepare; then
    for script in "$here"/check-*.sh; do
        base="$(basename "$script" .sh)"
        fn="check_${base#check-}"
        fn="${fn//-/_}"
        # shellcheck source=/dev/null
        source "$script"
        echo "== $base"
        "$fn"
    done
    if [[ "${ZODBFS_CMD[0]}" == /* && -z "${ZODBFS:-}" ]]; then
        export ZODBFS="${ZODBFS_CMD[0]}"     # built once, for the scripts below
    fi
    export ORACLE_PY
    for script in "$here"/conformance_*.sh; do
        [[ -e "$script" ]] || continue
        name="$(basename "$script" .sh)"
        if [[ " ${CONFORMANCE_SKIP:-} " == *" ${name#conformance_} "* ]]; then
            echo "== $name: skipped (CONFORMANCE_SKIP)"
            continue
        fi
        conf_run_script "$script"
    done
fi
echo "time: $((SECONDS - t0)) s"
conf_finish
