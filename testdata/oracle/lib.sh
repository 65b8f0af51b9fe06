# shellcheck shell=bash disable=SC2034
# lib.sh: shared pieces of the conformance scripts. Source it from bash:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What it gives:
#   conf_oracle_python        sets ORACLE_PY (runs setup.sh once)
#   conf_zodbfs               sets the ZODBFS_CMD array: $ZODBFS split into
#                             words if set, else builds
#                             `cargo build --release -p zfs-cli` and uses
#                             target/release/zodbfs. Returns 1 if the build fails.
#   conf_prepare              conf_oracle_python + conf_zodbfs + the inputs:
#                             freshly generated files, the committed fixtures and
#                             the real corpus, each with ZODB's answers, listed in
#                             $CONF_WORK/inputs.tsv (name, file, expected dir,
#                             magic; tab-separated)
#   conf_inputs               prints inputs.tsv (for `while read` loops)
#   conf_pass NAME            counts and prints `PASS NAME`
#   conf_fail NAME [FILE]     counts and prints `FAIL NAME` (+ FILE's first lines)
#   conf_skip NAME WHY        counts and prints `SKIP NAME (WHY)`
#   conf_run OUT CMD...       runs CMD with stdout to OUT, stderr to OUT.stderr;
#                             returns CMD's status
#   conf_same_text NAME EXPECTED ACTUAL   PASS/FAIL with a unified diff excerpt
#   conf_same_bytes NAME EXPECTED ACTUAL  PASS/FAIL with cmp's first difference
#   conf_run_script SCRIPT    runs a standalone conformance_*.sh script (its
#                             output passes through) and adds the numbers of
#                             its last `...: N passed, M failed` line to ours
#                             (no such line: one failure)
#   conf_finish               prints `conformance: N passed, M failed` as the
#                             last line; returns 1 if M > 0
#
# Environment:
#   ZFS_VENV             where setup.sh puts the oracle virtualenv
#   ZODBFS               the zodbfs command to test (default: build ours)
#   CONFORMANCE_SEEDS    four seeds for the generated files (default: random)
#   CONFORMANCE_WORK     work directory (default: a new temporary one,
#                        removed at the end when nothing failed)
#   ZFS_CORPUS           a directory of real Data.fs files (default:
#                        ../shared/corpus/real; relative to the repository)
#   CONFORMANCE_MB       size of each generated file in MB (default 3)

ORACLE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$ORACLE_DIR/../.." && pwd)"
# The real corpus: $ZFS_CORPUS (default ../shared/corpus/real), a relative path taken
# from the repository's root. It may not exist.
conf_corpus_dir() {
    local c="${ZFS_CORPUS:-../shared/corpus/real}"
    [[ "$c" == /* ]] || c="$REPO_ROOT/$c"
    printf '%s\n' "$c"
}

CONF_PASSED=0
CONF_FAILED=0
CONF_SKIPPED=0
CONF_ZODB_FAILED=0
CONF_WORK_IS_TEMP=0

conf_pass() {
    CONF_PASSED=$((CONF_PASSED + 1))
    echo "PASS $1"
}

conf_fail() {
    CONF_FAILED=$((CONF_FAILED + 1))
    echo "FAIL $1"
    if [[ -n "${2:-}" && -s "$2" ]]; then
        head -n 40 "$2" | sed 's/^/    /'
    fi
}

conf_skip() {
    CONF_SKIPPED=$((CONF_SKIPPED + 1))
    echo "SKIP $1 ($2)"
}

conf_oracle_python() {
    if [[ -z "${ORACLE_PY:-}" ]]; then
        ORACLE_PY="$("$ORACLE_DIR/setup.sh" | tail -n 1)"
    fi
}

conf_zodbfs() {
    if [[ -n "${ZODBFS:-}" ]]; then
        read -r -a ZODBFS_CMD <<< "$ZODBFS"
        return 0
    fi
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/zodbfs-build.XXXXXX")"
    echo "building zodbfs (cargo build --release -p zfs-cli)"
    if ! (cd "$REPO_ROOT" && cargo build --release -p zfs-cli) > "$log" 2>&1; then
        echo "cargo build failed; its last lines:"
        tail -n 40 "$log" | sed 's/^/    /'
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    ZODBFS_CMD=("$REPO_ROOT/target/release/zodbfs")
}

conf_run() {
    local out="$1"
    shift
    "$@" > "$out" 2> "$out.stderr"
}

# A FAIL report for a command that exited non-zero: its stderr, first lines.
conf_fail_status() {
    local name="$1" status="$2" out="$3"
    { echo "exit status $status; stderr:"; head -n 20 "$out.stderr"; } > "$out.why"
    conf_fail "$name" "$out.why"
}

conf_same_text() {
    local name="$1" expected="$2" actual="$3"
    if cmp -s "$expected" "$actual"; then
        conf_pass "$name"
    else
        diff -u --label zodb --label ours "$expected" "$actual" | head -n 30 > "$actual.diff"
        conf_fail "$name" "$actual.diff"
    fi
}

conf_same_bytes() {
    local name="$1" expected="$2" actual="$3"
    if cmp -s "$expected" "$actual"; then
        conf_pass "$name"
    else
        { cmp "$expected" "$actual" 2>&1 | head -n 3
          echo "sizes: zodb $(wc -c < "$expected"), ours $(wc -c < "$actual" 2>/dev/null || echo missing)"
        } > "$actual.diff"
        conf_fail "$name" "$actual.diff"
    fi
}

conf_inputs() {
    cat "$CONF_WORK/inputs.tsv"
}

# Add one input: NAME FILE EXPECTED_DIR. Runs expected.py unless the
# directory already holds ZODB's answers (committed fixtures).
conf_add_input() {
    local name="$1" file="$2" exp="$3" magic log
    log="$CONF_WORK/oracle-${name//\//_}.log"
    if [[ ! -f "$exp/info.json" ]]; then
        if ! "$ORACLE_PY" "$ORACLE_DIR/expected.py" "$file" "$exp" > "$log" 2>&1; then
            conf_fail "oracle $name" "$log"
            return 0
        fi
    fi
    magic="$(head -c 4 "$file")"
    printf '%s\t%s\t%s\t%s\n' "$name" "$file" "$exp" "$magic" >> "$CONF_WORK/inputs.tsv"
}

conf_prepare() {
    local t0 seeds s1 s2 s3 s4 mb gen f name corpus
    t0=$SECONDS
    if [[ -z "${CONFORMANCE_WORK:-}" ]]; then
        CONFORMANCE_WORK="$(mktemp -d "${TMPDIR:-/tmp}/zfs-conformance.XXXXXX")"
        CONF_WORK_IS_TEMP=1
    fi
    CONF_WORK="$CONFORMANCE_WORK"
    mkdir -p "$CONF_WORK/gen" "$CONF_WORK/expected" "$CONF_WORK/out"
    : > "$CONF_WORK/inputs.tsv"
    conf_oracle_python
    if ! conf_zodbfs; then
        conf_fail "build zodbfs"
        return 1
    fi

    seeds="${CONFORMANCE_SEEDS:-}"
    if [[ -z "$seeds" ]]; then
        seeds="$(for _ in 1 2 3 4; do echo $(( (RANDOM << 15 | RANDOM) % 1000000 )); done | tr '\n' ' ')"
    fi
    read -r s1 s2 s3 s4 _ <<< "$seeds"
    echo "conformance seeds: $s1 $s2 $s3 $s4 (rerun with CONFORMANCE_SEEDS=\"$s1 $s2 $s3 $s4\")"
    mb="${CONFORMANCE_MB:-3}"
    gen=("$ORACLE_PY" "$ORACLE_DIR/gen_datafs.py")
    local g="$CONF_WORK/gen"
    {
        "${gen[@]}" "$g/plain-$s1.fs" --seed "$s1" --mb "$mb" &&
        "${gen[@]}" "$g/multidb-$s2.fs" --seed "$s2" --mb "$mb" --multidb &&
        "${gen[@]}" "$g/blobs-undo-torn-$s3.fs" --seed "$s3" --mb "$mb" \
            --blobs "$g/blobs-$s3" --undo-every 4 --tail torn &&
        "${gen[@]}" "$g/ctail-$s4.fs" --seed "$s4" --txns 300 --tail c
    } > "$CONF_WORK/gen.log" 2>&1 || { conf_fail "generate" "$CONF_WORK/gen.log"; return 1; }
    for f in "$g"/*.fs; do
        name="gen/$(basename "$f" .fs)"
        conf_add_input "$name" "$f" "$CONF_WORK/expected/$name"
    done
    for f in "$REPO_ROOT"/testdata/fixtures/*.fs; do
        [[ -e "$f" ]] || continue
        name="fixture/$(basename "$f" .fs)"
        conf_add_input "$name" "$f" "${f%.fs}.expected"
    done
    corpus="$(conf_corpus_dir)"
    if [[ -d "$corpus" ]]; then
        for f in "$corpus"/*.fs; do
            [[ -e "$f" ]] || continue
            name="corpus/$(basename "$f" .fs)"
            conf_add_input "$name" "$f" "$CONF_WORK/expected/$name"
        done
    else
        echo "no real corpus at $corpus: skipping it"
    fi
    echo "oracle: $(wc -l < "$CONF_WORK/inputs.tsv") inputs ready in $((SECONDS - t0)) s"
}

conf_run_script() {
    local script="$1" name log line p f
    name="$(basename "$script" .sh)"
    log="$(mktemp "${TMPDIR:-/tmp}/zfs-$name.XXXXXX")"
    echo "== $name"
    # Each script makes its own work directory and picks and prints its own seeds.
    env -u CONFORMANCE_WORK -u CONFORMANCE_SEEDS bash "$script" 2>&1 | tee "$log"
    line="$(grep -E '^conformance[-_a-z]*: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)"
    rm -f "$log"
    if [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        p="${BASH_REMATCH[1]}"
        f="${BASH_REMATCH[2]}"
        CONF_PASSED=$((CONF_PASSED + p))
        CONF_FAILED=$((CONF_FAILED + f))
    else
        conf_fail "$name (no summary line)"
    fi
}

conf_finish() {
    echo "skipped: $CONF_SKIPPED; records where ZODB itself failed: $CONF_ZODB_FAILED"
    if [[ "$CONF_WORK_IS_TEMP" == 1 && "$CONF_FAILED" == 0 ]]; then
        rm -rf "$CONF_WORK"
    elif [[ -n "${CONF_WORK:-}" ]]; then
        echo "work directory kept: $CONF_WORK"
    fi
    echo "conformance: $CONF_PASSED passed, $CONF_FAILED failed"
    [[ "$CONF_FAILED" == 0 ]]
}
