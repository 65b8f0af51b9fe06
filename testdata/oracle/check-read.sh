#!/usr/bin/env bash
# Read-side conformance checks: zodbfs reindex, dump, tail, records and info
# against Python ZODB's answers (expected.py) for every input of conf_prepare.
#
# Sourced by conformance.sh (which calls check_read); can also run alone:
#   testdata/oracle/check-read.sh

check_read() {
    local name file exp magic out st
    while IFS=$'\t' read -r -u 3 name file exp magic; do
        out="$CONF_WORK/out/$name"
        mkdir -p "$out"

        # reindex: the .index bytes
        if conf_run "$out/reindex.stdout" "${ZODBFS_CMD[@]}" reindex --output "$out/index" "$file"; then
            conf_same_bytes "reindex $name" "$exp/index" "$out/index"
        else
            conf_fail_status "reindex $name" $? "$out/reindex.stdout"
        fi

        # dump: fsdump text (FS30 only: ZODB cannot name FS21 pickles the same way)
        if [[ "$magic" != FS30 ]]; then
            : # not compared, see README
        elif [[ -e "$exp/fsdump.err" ]]; then
            conf_skip "dump $name" "ZODB's fsdump raised: $(head -n 1 "$exp/fsdump.err")"
        elif conf_run "$out/dump.txt" "${ZODBFS_CMD[@]}" dump "$file"; then
            conf_same_text "dump $name" "$exp/fsdump.txt" "$out/dump.txt"
        else
            conf_fail_status "dump $name" $? "$out/dump.txt"
        fi

        # tail: the last 10 transactions, then all of them
        local what args ref
        for what in tail tail-all; do
            if [[ "$what" == tail ]]; then args=(tail); ref=fstail; else args=(tail -n 1000000); ref=fstail-all; fi
            if [[ -e "$exp/$ref.err" ]]; then
                conf_skip "$what $name" "ZODB's fstail raised: $(head -n 1 "$exp/$ref.err")"
            elif conf_run "$out/$what.txt" "${ZODBFS_CMD[@]}" "${args[@]}" "$file"; then
                conf_same_text "$what $name" "$exp/$ref.txt" "$out/$what.txt"
            else
                conf_fail_status "$what $name" $? "$out/$what.txt"
            fi
        done

        # records: class and references of every data record
        if conf_run "$out/records.txt" "${ZODBFS_CMD[@]}" records "$file"; then
            "$ORACLE_PY" "$ORACLE_DIR/compare.py" records "$exp/records.txt" "$out/records.txt" \
                > "$out/records.cmp" 2>&1
            st=$?
            if grep -q '^ZODB-FAILED zodb:' "$out/records.cmp"; then
                CONF_ZODB_FAILED=$((CONF_ZODB_FAILED + $(grep -c '^ZODB-FAILED zodb:' "$out/records.cmp")))
                echo "zodb-failed records in $name:"
                grep '^ZODB-FAILED' "$out/records.cmp" | sed 's/^ZODB-FAILED /    /'
            fi
            if [[ $st == 0 ]]; then
                conf_pass "records $name"
            else
                grep -v '^ZODB-FAILED' "$out/records.cmp" > "$out/records.diff"
                conf_fail "records $name" "$out/records.diff"
            fi
        else
            conf_fail_status "records $name" $? "$out/records.txt"
        fi

        # info --json: size, transactions, objects, last_tid
        if conf_run "$out/info.json" "${ZODBFS_CMD[@]}" info --json "$file"; then
            if "$ORACLE_PY" "$ORACLE_DIR/compare.py" info "$exp/info.json" "$out/info.json" \
                    > "$out/info.diff" 2>&1; then
                conf_pass "info $name"
            else
                conf_fail "info $name" "$out/info.diff"
            fi
        else
            conf_fail_status "info $name" $? "$out/info.json"
        fi
    done 3< <(conf_inputs)
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -uo pipefail
    # shellcheck source=lib.sh
    source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
    conf_prepare && check_read
    conf_finish
fi
