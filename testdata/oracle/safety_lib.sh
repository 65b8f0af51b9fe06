# shellcheck shell=bash
# safety_lib.sh: the scenarios shared by the crash, disk-full and hostile-filesystem
# suites (conformance_crash.sh, conformance_diskfull.sh, conformance_hostile.sh).
#
# Every writer of ours is one scenario: an initial state in a directory (made by
# `sc_setup OP DIR`), one command (`sc_cmd OP DIR`), and the two states a run may leave:
# OLD (the initial one) and NEW (after a complete run). `sc_check OP DIR WHEN` checks the
# invariants after an interrupted or failed run (WHEN=after-kill) or after the next,
# complete run (WHEN=after-rerun):
#   - the source database never changes (backups, reindex, recover, pack --prepare) or
#     is OLD or NEW (pack: then `.old` is the original);
#   - saved references (`Data.fs.refs`, written by `pack --prepare` and by a pack with GC
#     to the last transaction for the file it writes) are absent or complete: beside the
#     original, the ones it had; beside a packed Data.fs, only those a complete pack leaves;
#   - a blob directory keeps every blob file its Data.fs needs; after the rerun it is
#     the one a single pack leaves (no garbage file left over);
#   - a repository restores, by ours and by Python repozo, to a state that was backed up
#     (S0 or S1); after the rerun to S1, and `repozo -V` passes;
#   - a restore target, an index or a recovered file is OLD or NEW, never absent, never
#     partial; an index always matches the file beside it;
#   - after the rerun, no temporary file of any run is left.
# Failures are printed on stderr, one line each; the function returns 1 if any.
#
# Inputs, made once by `sc_prepare WORK`: S0.fs and S1.fs (S1 = S0 + more commits, both
# written by real ZODB), their indexes, a repository holding full(S0) then incr(S1)
# (plain and gzip), the packed S1 and its index, the recovered S1; S1's saved references
# (S1.refs, by `pack --prepare` beside S1.index) and the pack that uses them (to just after
# S1's last transaction, SC_REFS_TID); B1.fs with its blob directory (written by real ZODB)
# and the manifests of that directory before and after a pack.
#
# Needs: ORACLE_PY, ZODBFS (our zodbfs), REPOZO (our repozo).

SC_OPS_ALL="backup-full backup-full-z backup-incr backup-incr-z restore-over pack-gc pack-nogc pack-blobs pack-refs prepare reindex recover"

sha() { sha1sum "$1" 2>/dev/null | cut -d' ' -f1; }

pyrepozo() { "$ORACLE_PY" -m ZODB.scripts.repozo "$@"; }

# What a pack's --json report (in FILE) says of saved references: used, ignored or none.
sc_saved_refs() {
    "$ORACLE_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["saved_references"])' "$1" 2>/dev/null
}

# Transaction boundaries of a clean Data.fs, one per line.
sc_boundaries() {
    "$ORACLE_PY" - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], 'rb').read()
pos = 4
while pos + 16 <= len(d):
    tlen = struct.unpack('>Q', d[pos + 8:pos + 16])[0]
    pos += tlen + 8
    print(pos)
PY
}

sc_prepare() {
    local work=$1 seed=${2:-7}
    SC_IN="$work/inputs"
    SC_SCRATCH="$work/scratch"
    rm -rf "$SC_IN" "$SC_SCRATCH"
    mkdir -p "$SC_IN" "$SC_SCRATCH"
    "$ORACLE_PY" "$ORACLE_DIR/gen_datafs.py" "$SC_IN/S1.fs" --seed "$seed" --txns 400 \
        --undo-every 7 >/dev/null 2>&1 || return 1
    # S0: the first two thirds of S1, cut at a transaction boundary.
    local size cut
    size=$(stat -c %s "$SC_IN/S1.fs")
    cut=$(sc_boundaries "$SC_IN/S1.fs" | awk -v lim=$((size * 2 / 3)) '$1 <= lim {c=$1} END {print c}')
    head -c "$cut" "$SC_IN/S1.fs" > "$SC_IN/S0.fs"
    "$ZODBFS" reindex -o "$SC_IN/S0.index" "$SC_IN/S0.fs" >/dev/null 2>&1 || return 1
    "$ZODBFS" reindex -o "$SC_IN/S1.index" "$SC_IN/S1.fs" >/dev/null 2>&1 || return 1
    SC_LAST_TID=$("$ZODBFS" info --json "$SC_IN/S1.fs" | "$ORACLE_PY" -c 'import json,sys; print(json.load(sys.stdin)["last_tid"])')
    # Repositories: full backup of S0, then an incremental with S1 (ours, plain and gzip).
    local z
    for z in "" z; do
        mkdir -p "$SC_IN/repo0$z" "$SC_IN/repo1$z"
        cp "$SC_IN/S0.fs" "$SC_IN/src.fs"
        "$REPOZO" -B ${z:+-z} -r "$SC_IN/repo0$z" -f "$SC_IN/src.fs" >/dev/null 2>&1 || return 1
        cp -a "$SC_IN/repo0$z/." "$SC_IN/repo1$z/"
        sleep 1
        cp "$SC_IN/S1.fs" "$SC_IN/src.fs"
        "$REPOZO" -B ${z:+-z} -r "$SC_IN/repo1$z" -f "$SC_IN/src.fs" >/dev/null 2>&1 || return 1
        rm -f "$SC_IN/src.fs"
    done
    # The expected results of pack (GC and not) and recover.
    local g flags
    for g in gc nogc; do
        mkdir -p "$SC_IN/pack-$g"
        cp "$SC_IN/S1.fs" "$SC_IN/pack-$g/Data.fs"
        flags=()
        [[ $g == nogc ]] && flags=(--no-gc)
        "$ZODBFS" pack "${flags[@]}" --tid "$SC_LAST_TID" "$SC_IN/pack-$g/Data.fs" \
            >/dev/null 2>&1 || return 1
    done
    # Saved references of S1 (beside its index, as ZODB leaves it), and the pack with GC
    # that uses them: its pack time must be after the last transaction (S1's last tid + 1).
    # It must have used them, and give the bytes of the same pack without them.
    SC_REFS_TID=$("$ORACLE_PY" -c 'import sys; print("%016x" % (int(sys.argv[1], 16) + 1))' "$SC_LAST_TID")
    local r
    for r in prepare pack-refs pack-norefs; do
        mkdir -p "$SC_IN/$r"
        cp "$SC_IN/S1.fs" "$SC_IN/$r/Data.fs"
        cp "$SC_IN/S1.index" "$SC_IN/$r/Data.fs.index"
    done
    "$ZODBFS" pack --prepare "$SC_IN/prepare/Data.fs" >/dev/null 2>&1 || return 1
    cp "$SC_IN/prepare/Data.fs.refs" "$SC_IN/S1.refs"
    cp "$SC_IN/S1.refs" "$SC_IN/pack-refs/Data.fs.refs"
    for r in pack-refs pack-norefs; do
        "$ZODBFS" pack --json --tid "$SC_REFS_TID" "$SC_IN/$r/Data.fs" \
            >"$SC_IN/$r.json" 2>/dev/null || return 1
    done
    if [[ $(sc_saved_refs "$SC_IN/pack-refs.json") != used ]]; then
        echo "sc_prepare: the pack beside Data.fs.refs did not use them: $(head -c 300 "$SC_IN/pack-refs.json")" >&2
        return 1
    fi
    if ! cmp -s "$SC_IN/pack-refs/Data.fs" "$SC_IN/pack-norefs/Data.fs" ||
       ! cmp -s "$SC_IN/pack-refs/Data.fs.index" "$SC_IN/pack-norefs/Data.fs.index"; then
        echo "sc_prepare: the pack that used Data.fs.refs differs from the same pack without them" >&2
        return 1
    fi
    # Either pack leaves the same references for the packed file.
    if [[ ! -f $SC_IN/pack-refs/Data.fs.refs ]] ||
       ! cmp -s "$SC_IN/pack-refs/Data.fs.refs" "$SC_IN/pack-norefs/Data.fs.refs"; then
        echo "sc_prepare: the packs with and without Data.fs.refs left different references for the packed file" >&2
        return 1
    fi
    "$ZODBFS" recover "$SC_IN/S1.fs" "$SC_IN/R.fs" >/dev/null 2>&1 || return 1
    # A database with blobs (some rewritten, some let go), and what one pack of it leaves.
    "$ORACLE_PY" "$ORACLE_DIR/gen_datafs.py" "$SC_IN/B1.fs" --seed "$seed" --txns 200 \
        --blobs "$SC_IN/B1.blobs" --blob-bytes 3000 >/dev/null 2>&1 || return 1
    SC_BLOB_TID=$("$ZODBFS" info --json "$SC_IN/B1.fs" | "$ORACLE_PY" -c 'import json,sys; print(json.load(sys.stdin)["last_tid"])')
    mkdir -p "$SC_IN/pack-blobs"
    cp "$SC_IN/B1.fs" "$SC_IN/pack-blobs/Data.fs"
    cp -a "$SC_IN/B1.blobs" "$SC_IN/pack-blobs/blobs"
    "$ZODBFS" pack --tid "$SC_BLOB_TID" --blobs "$SC_IN/pack-blobs/blobs" \
        "$SC_IN/pack-blobs/Data.fs" >/dev/null 2>&1 || return 1
    sc_blob_manifest "$SC_IN/B1.blobs" > "$SC_IN/B1.manifest"
    sc_blob_manifest "$SC_IN/pack-blobs/blobs" > "$SC_IN/pack-blobs.manifest"
    cmp -s "$SC_IN/B1.manifest" "$SC_IN/pack-blobs.manifest" && return 1 # no blob garbage
    export SC_IN SC_SCRATCH SC_LAST_TID SC_BLOB_TID SC_REFS_TID
}

# The files of a blob directory, "path sha1" sorted: not `.removed` (the list a pack
# leaves, empty or not, as ZODB does) nor temporaries (those are checked apart).
sc_blob_manifest() {
    (cd "$1" && find . -type f ! -name .removed ! -name '.*.tmp-*' -printf '%P\n' |
        LC_ALL=C sort | while read -r f; do echo "$f $(sha "$f")"; done)
}

# The initial state of OP in DIR.
sc_setup() {
    local op=$1 dir=$2
    rm -rf "$dir"
    mkdir -p "$dir"
    case $op in
        backup-full|backup-full-z)
            mkdir "$dir/repo"; cp "$SC_IN/S1.fs" "$dir/src.fs" ;;
        backup-incr)
            cp -a "$SC_IN/repo0" "$dir/repo"; cp "$SC_IN/S1.fs" "$dir/src.fs" ;;
        backup-incr-z)
            cp -a "$SC_IN/repo0z" "$dir/repo"; cp "$SC_IN/S1.fs" "$dir/src.fs" ;;
        restore-over)
            cp -a "$SC_IN/repo1" "$dir/repo"
            cp "$SC_IN/S0.fs" "$dir/T.fs"; cp "$SC_IN/S0.index" "$dir/T.fs.index" ;;
        pack-gc|pack-nogc)
            cp "$SC_IN/S1.fs" "$dir/Data.fs" ;;
        pack-refs)
            cp "$SC_IN/S1.fs" "$dir/Data.fs"; cp "$SC_IN/S1.index" "$dir/Data.fs.index"
            cp "$SC_IN/S1.refs" "$dir/Data.fs.refs" ;;
        prepare)
            cp "$SC_IN/S1.fs" "$dir/Data.fs"; cp "$SC_IN/S1.index" "$dir/Data.fs.index" ;;
        pack-blobs)
            cp "$SC_IN/B1.fs" "$dir/Data.fs"; cp -a "$SC_IN/B1.blobs" "$dir/blobs" ;;
        reindex)
            cp "$SC_IN/S1.fs" "$dir/Data.fs"; cp "$SC_IN/S0.index" "$dir/Data.fs.index" ;;
        recover)
            cp "$SC_IN/S1.fs" "$dir/in.fs"; cp "$SC_IN/S0.fs" "$dir/out.fs" ;;
    esac
}

# The command of OP in DIR (printed, one word per line; read it with mapfile).
sc_cmd() {
    local op=$1 dir=$2
    case $op in
        backup-full)   printf '%s\n' "$REPOZO" -B -F -r "$dir/repo" -f "$dir/src.fs" ;;
        backup-full-z) printf '%s\n' "$REPOZO" -B -F -z -r "$dir/repo" -f "$dir/src.fs" ;;
        backup-incr)   printf '%s\n' "$REPOZO" -B -r "$dir/repo" -f "$dir/src.fs" ;;
        backup-incr-z) printf '%s\n' "$REPOZO" -B -z -r "$dir/repo" -f "$dir/src.fs" ;;
        restore-over)  printf '%s\n' "$REPOZO" -R -r "$dir/repo" -o "$dir/T.fs" ;;
        pack-gc)       printf '%s\n' "$ZODBFS" pack --tid "$SC_LAST_TID" "$dir/Data.fs" ;;
        pack-nogc)     printf '%s\n' "$ZODBFS" pack --no-gc --tid "$SC_LAST_TID" "$dir/Data.fs" ;;
        pack-blobs)    printf '%s\n' "$ZODBFS" pack --tid "$SC_BLOB_TID" --blobs "$dir/blobs" "$dir/Data.fs" ;;
        pack-refs)     printf '%s\n' "$ZODBFS" pack --tid "$SC_REFS_TID" "$dir/Data.fs" ;;
        prepare)       printf '%s\n' "$ZODBFS" pack --prepare "$dir/Data.fs" ;;
        reindex)       printf '%s\n' "$ZODBFS" reindex "$dir/Data.fs" ;;
        recover)       printf '%s\n' "$ZODBFS" recover --force "$dir/in.fs" "$dir/out.fs" ;;
    esac
}

# Temporary files of ours (of any version) left in DIR (recursively); files of other
# users (planted by the hostile suite) are not ours.
sc_temps() {
    find "$1" -user "$(id -u)" \( -name '.*.tmp-*' -o -name '.*.tmp.*' -o -name '*.part' \
        -o -name '*.pack' -o -name '*.index_tmp' \) -print 2>/dev/null
}

sc_err() { echo "    $*" >&2; SC_BAD=1; }

# A repository in DIR/repo restores, by ours and by Python repozo, to one of the states
# given (sha1s); with ALLOW_NONE=1 a repository with no backup yet may refuse.
sc_check_repo() {
    local dir=$1 allow_none=$2; shift 2
    local want=" $* " tool out rc
    for tool in ours py; do
        out="$SC_SCRATCH/restored-$tool.fs"
        rm -f "$out" "$out.index"
        if [[ $tool == ours ]]; then
            "$REPOZO" -R -r "$dir/repo" -o "$out" >/dev/null 2>"$SC_SCRATCH/restore-$tool.err"
        else
            pyrepozo -R -r "$dir/repo" -o "$out" >/dev/null 2>"$SC_SCRATCH/restore-$tool.err"
        fi
        rc=$?
        if [[ $rc != 0 ]]; then
            if [[ $allow_none == 1 ]] && ! ls "$dir/repo" | grep -qE '\.(fs|fsz)$'; then
                continue
            fi
            sc_err "$tool restore failed ($rc): $(head -c 300 "$SC_SCRATCH/restore-$tool.err")"
            continue
        fi
        [[ $want == *" $(sha "$out") "* ]] ||
            sc_err "$tool restore gives a state that was never backed up"
        rm -f "$out" "$out.index"
    done
}

# An index file, if present, describes the data file beside it.
sc_check_index() {
    local data=$1 index=$2
    [[ -e $index ]] || return 0
    local ds is
    ds=$(sha "$data")
    is=$(sha "$index")
    if [[ $ds == "$(sha "$SC_IN/S1.fs")" && $is == "$(sha "$SC_IN/S1.index")" ]] ||
       [[ $ds == "$(sha "$SC_IN/S0.fs")" && $is == "$(sha "$SC_IN/S0.index")" ]]; then
        return 0
    fi
    # Any other pair (a packed file and its index): the index must match a fresh scan.
    local fresh
    fresh="$SC_SCRATCH/fresh.index"
    "$ZODBFS" reindex -o "$fresh" "$data" >/dev/null 2>&1
    [[ $is == "$(sha "$fresh")" ]] || sc_err "$(basename "$index") does not describe $(basename "$data")"
    rm -f "$fresh"
}

sc_check() {
    local op=$1 dir=$2 when=$3
    SC_BAD=0
    local s0 s1
    s0=$(sha "$SC_IN/S0.fs")
    s1=$(sha "$SC_IN/S1.fs")
    case $op in
        backup-*)
            [[ $(sha "$dir/src.fs") == "$s1" ]] || sc_err "the source changed"
            if [[ $when == after-kill ]]; then
                if [[ $op == backup-full* ]]; then
                    sc_check_repo "$dir" 1 "$s1"
                else
                    sc_check_repo "$dir" 0 "$s0" "$s1"
                fi
            else
                sc_check_repo "$dir" 0 "$s1"
                "$REPOZO" -V -r "$dir/repo" >/dev/null 2>"$SC_SCRATCH/verify.err" ||
                    sc_err "repozo -V fails: $(head -c 300 "$SC_SCRATCH/verify.err")"
            fi
            ;;
        restore-over)
            if [[ ! -e $dir/T.fs ]]; then
                sc_err "the restore target is gone"
            else
                local t
                t=$(sha "$dir/T.fs")
                if [[ $when == after-kill ]]; then
                    [[ $t == "$s0" || $t == "$s1" ]] || sc_err "the restore target is neither old nor new"
                else
                    [[ $t == "$s1" ]] || sc_err "the rerun did not restore the newest state"
                fi
                sc_check_index "$dir/T.fs" "$dir/T.fs.index"
            fi
            ;;
        pack-*)
            # The original (S1, or B1 with blobs) or the packed file beside its index.
            local g=${op#pack-} d p src=$s1
            [[ $op == pack-blobs ]] && src=$(sha "$SC_IN/B1.fs")
            d=$(sha "$dir/Data.fs")
            p=$(sha "$SC_IN/pack-$g/Data.fs")
            if [[ $d == "$src" ]]; then
                :
            elif [[ $d == "$p" ]]; then
                if [[ $when == after-kill && $(sha "$dir/Data.fs.old") != "$src" ]]; then
                    sc_err "packed, but Data.fs.old is not the original"
                fi
            else
                sc_err "Data.fs is neither the original nor the packed file"
            fi
            [[ $when == after-kill || $d == "$p" ]] || sc_err "the rerun did not pack"
            [[ $when == after-kill || -e $dir/Data.fs.index ]] || sc_err "no index after the rerun"
            sc_check_index "$dir/Data.fs" "$dir/Data.fs.index"
            # Saved references: beside the packed file, only those a complete pack leaves
            # for it, or none (killed before their rename; the swap removes the original's
            # before it); beside the original, the ones the setup saved, or none.
            if [[ -e $dir/Data.fs.refs || -L $dir/Data.fs.refs ]]; then
                if [[ $d == "$p" ]]; then
                    if [[ -L $dir/Data.fs.refs ||
                          $(sha "$dir/Data.fs.refs") != "$(sha "$SC_IN/pack-$g/Data.fs.refs")" ]]; then
                        sc_err "Data.fs.refs beside the packed Data.fs is not the one a complete pack leaves for it"
                    fi
                elif [[ $op == pack-refs && ( -L $dir/Data.fs.refs ||
                        $(sha "$dir/Data.fs.refs") != "$(sha "$SC_IN/S1.refs")" ) ]]; then
                    sc_err "Data.fs.refs changed"
                fi
            fi
            # The blob directory: untouched while the original is in place; once packed, every
            # file the packed Data.fs needs, and after the rerun nothing more.
            if [[ $op == pack-blobs ]]; then
                local m="$SC_SCRATCH/manifest" want="$SC_IN/pack-blobs.manifest"
                sc_blob_manifest "$dir/blobs" > "$m"
                if [[ $d == "$src" ]]; then
                    cmp -s "$m" "$SC_IN/B1.manifest" ||
                        sc_err "the blob directory changed, but Data.fs was not packed"
                elif [[ $d == "$p" ]]; then
                    local lost
                    lost=$(LC_ALL=C comm -23 "$want" "$m" | head -3 | tr '\n' ' ')
                    [[ -z $lost ]] || sc_err "blob files the packed Data.fs needs are gone or changed: $lost"
                    if [[ $when == after-rerun ]] && ! cmp -s "$m" "$want"; then
                        sc_err "the rerun left $(LC_ALL=C comm -13 "$want" "$m" | wc -l) garbage blob files"
                    fi
                fi
            fi
            ;;
        prepare)
            # The database and its index untouched; the references absent or complete (after
            # the rerun, present): a regular file, the bytes of an uninterrupted run.
            [[ $(sha "$dir/Data.fs") == "$s1" ]] || sc_err "the database changed"
            [[ $(sha "$dir/Data.fs.index") == "$(sha "$SC_IN/S1.index")" ]] || sc_err "the index changed"
            if [[ -L $dir/Data.fs.refs ]]; then
                sc_err "Data.fs.refs is a symlink"
            elif [[ -e $dir/Data.fs.refs ]]; then
                [[ $(sha "$dir/Data.fs.refs") == "$(sha "$SC_IN/S1.refs")" ]] ||
                    sc_err "Data.fs.refs is not the references an uninterrupted run saves (partial?)"
            elif [[ $when == after-rerun ]]; then
                sc_err "the rerun saved no Data.fs.refs"
            fi
            ;;
        reindex)
            [[ $(sha "$dir/Data.fs") == "$s1" ]] || sc_err "the database changed"
            local i
            i=$(sha "$dir/Data.fs.index")
            if [[ $when == after-kill ]]; then
                [[ $i == "$(sha "$SC_IN/S0.index")" || $i == "$(sha "$SC_IN/S1.index")" ]] ||
                    sc_err "the index is neither old nor new"
            else
                [[ $i == "$(sha "$SC_IN/S1.index")" ]] || sc_err "the rerun did not write the index"
            fi
            ;;
        recover)
            [[ $(sha "$dir/in.fs") == "$s1" ]] || sc_err "the input changed"
            local o
            o=$(sha "$dir/out.fs")
            if [[ $when == after-kill ]]; then
                [[ $o == "$s0" || $o == "$(sha "$SC_IN/R.fs")" ]] || sc_err "the output is neither old nor complete"
            else
                [[ $o == "$(sha "$SC_IN/R.fs")" ]] || sc_err "the rerun did not recover"
            fi
            ;;
    esac
    if [[ $when == after-rerun ]]; then
        local left
        left=$(sc_temps "$dir")
        [[ -z $left ]] || sc_err "temporary files left: $(echo "$left" | tr '\n' ' ')"
    fi
    return $SC_BAD
}
