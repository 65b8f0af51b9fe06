#!/usr/bin/env bash
# A hostile file system: another user ("nobody") plants symlinks to a victim file, or
# pre-creates files, at every temporary and output name a writer of ours may use, in a
# directory they can write; holds locks on everything they can open; the source is 0600;
# the output is the input by path, hard link or symlink. Nothing may be written through a
# link or into a file someone else made, no run may hang, every copy of a database keeps
# its mode, and no command may write over its own input. Saved references (Data.fs.refs)
# that are a symlink, writable by others or another user's are never used by a pack (it
# gives the same bytes) nor written through.
#
#   testdata/oracle/conformance_hostile.sh
#
# Needs root (setpriv to nobody); without it every case is SKIPped with the reason.
# Environment: ZODBFS, REPOZO, ORACLE_PY, CONFORMANCE_SEEDS, SAFETY_OPS, CONFORMANCE_WORK.
# Ends with `conformance-hostile: N passed, M failed`.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "$here/lib.sh"
# shellcheck source=/dev/null
source "$here/safety_lib.sh"
finish() { echo "conformance-hostile: $CONF_PASSED passed, $CONF_FAILED failed"; [[ $CONF_FAILED == 0 ]]; exit; }
conf_oracle_python
conf_zodbfs >&2 || { conf_fail "build"; finish; }
ZODBFS="${ZODBFS_CMD[0]}"
REPOZO="${REPOZO:-$(dirname "$ZODBFS")/zodbfs-repozo}"
export ORACLE_PY ZODBFS REPOZO
work="${CONFORMANCE_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/zfs-hostile.XXXXXX")}"
mkdir -p "$work"
chmod 755 "$work"
seed="${CONFORMANCE_SEEDS:-$((RANDOM % 100000))}"
echo "conformance-hostile seed: $seed (rerun with CONFORMANCE_SEEDS=$seed)"
sc_prepare "$work" "$seed" || { conf_fail "preparing the inputs"; finish; }
chmod -R a+rX "$work"
ops="${SAFETY_OPS:-$SC_OPS_ALL}"
if [[ $(id -u) != 0 ]] || ! setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
    for op in $ops; do conf_skip "$op hostile" "needs root to act as another user"; done
    finish
fi
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
t0=$SECONDS
victim="$work/victim"

# Names OP may create in DIR (relative), for the next few pids and seconds.
names_for() {
    local op=$1 dir=$2 last base p n s
    last=$(cat /proc/sys/kernel/ns_last_pid)
    temps() { # temporaries of ours (this version and the last) for the target $1
        for ((p = last + 1; p <= last + 40; p++)); do
            for n in 0 1 2; do echo ".$1.tmp-$p-$n"; done
            echo ".$1.tmp.$p"
        done
    }
    case $op in
        restore-over)
            echo T.fs.part; temps T.fs; temps T.fs.index ;;
        prepare)
            echo Data.fs.refs; temps Data.fs.refs ;;
        pack-*)
            # Data.fs.refs too (a pack with GC writes the packed file's); pack-refs has its own.
            for base in Data.fs.pack Data.fs.index.index_tmp Data.fs.old Data.fs.tr0 Data.fs.refs; do echo "$base"; done
            temps Data.fs; temps Data.fs.index; temps Data.fs.old; temps Data.fs.refs
            if [[ $op == pack-blobs ]]; then
                # The list of garbage blob files, and its temporaries.
                echo blobs/.removed
                for ((p = last + 1; p <= last + 40; p++)); do echo "blobs/..removed.tmp-$p-0"; done
            fi ;;
        reindex)
            temps Data.fs.index ;;
        recover)
            echo out.fs.tr0; temps out.fs ;;
        backup-*)
            for ((s = 0; s <= 3; s++)); do
                local stamp
                stamp=$(date -u -d "@$(( $(date +%s) + s ))" +%Y-%m-%d-%H-%M-%S)
                for base in "$stamp.fs" "$stamp.fsz" "$stamp.deltafs" "$stamp.deltafsz" "$stamp.index" "$stamp.dat"; do
                    echo "repo/$base"
                    for ((p = last + 1; p <= last + 10; p++)); do echo "repo/.$base.tmp-$p-0"; echo "repo/.$base.tmp.$p"; done
                done
            done ;;
    esac
}

# Output files of OP in DIR that copy the database (and must keep its mode).
outputs_of() {
    local op=$1 dir=$2
    case $op in
        backup-*) find "$dir/repo" -maxdepth 1 -user "$(id -u)" -type f -newer "$work/stamp" \
                       \( -name '*.fs' -o -name '*.fsz' -o -name '*.deltafs' -o -name '*.deltafsz' -o -name '*.index' \) ;;
        restore-over) echo "$dir/T.fs"; echo "$dir/T.fs.index" ;;
        pack-*) echo "$dir/Data.fs"; echo "$dir/Data.fs.index"
                # A pack with GC to the last transaction leaves the packed file's references.
                [[ $op == pack-nogc ]] || echo "$dir/Data.fs.refs" ;;
        prepare) echo "$dir/Data.fs.refs" ;;
        reindex) echo "$dir/Data.fs.index" ;;
        recover) echo "$dir/out.fs" ;;
    esac
}

hostile_case() {
    local op=$1 how=$2 name="$1 $2"
    local dir="$work/case" errs="$work/errs"
    : > "$errs"
    sc_setup "$op" "$dir"
    chmod 777 "$dir"
    [[ -d $dir/repo ]] && chmod 777 "$dir/repo"
    [[ -d $dir/blobs ]] && chmod 777 "$dir/blobs"
    # The source database, 0600 and ours.
    local src
    for src in "$dir/src.fs" "$dir/Data.fs" "$dir/in.fs"; do [[ -e $src ]] && chmod 600 "$src"; done
    [[ -d $dir/repo ]] && find "$dir/repo" -type f -exec chmod 600 {} +
    [[ -e $dir/T.fs ]] && chmod 600 "$dir/T.fs" "$dir/T.fs.index"
    [[ -e $dir/out.fs ]] && chmod 600 "$dir/out.fs"
    printf 'precious' > "$victim"
    chmod 666 "$victim"
    local planted=0 n
    while read -r n; do
        case $how in
            symlinks) as_nobody ln -s "$victim" "$dir/$n" 2>/dev/null && planted=$((planted + 1)) ;;
            files) as_nobody sh -c 'umask 0; printf attacker > "$1"' _ "$dir/$n" 2>/dev/null && planted=$((planted + 1)) ;;
        esac
    done < <(names_for "$op" "$dir")
    touch "$work/stamp"
    sleep 0.01
    mapfile -t cmd < <(sc_cmd "$op" "$dir")
    local rc
    timeout 120 "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/run.err"
    rc=$?
    [[ $rc != 124 ]] || echo "    the run hung (killed after 120 s)" >> "$errs"
    [[ $(cat "$victim") == precious ]] || echo "    the victim file was written through a planted link" >> "$errs"
    if [[ $rc == 0 ]]; then
        if [[ $op == backup-* ]]; then
            # Ours restores with the planted files still there (they are not its backups)...
            if ! "$REPOZO" -R -r "$dir/repo" -o "$SC_SCRATCH/with-planted.fs" 2>"$SC_SCRATCH/wp.err"; then
                echo "    our restore with the planted files present failed: $(head -c 300 "$SC_SCRATCH/wp.err")" >> "$errs"
            fi
            rm -f "$SC_SCRATCH/with-planted.fs"
            # ...Python's takes any file with a backup's name as one, so the planted files go
            # (as an administrator would remove them) before both restores are compared.
            find "$dir/repo" -maxdepth 1 ! -user "$(id -u)" \( -type f -o -type l \) -delete
            # A name held by a planted file was passed by: the backup took a later second,
            # which Python's restore sees only once that second has come.
            local newest
            newest=$(find "$dir/repo" -maxdepth 1 -name '????-??-??-??-??-??.*' -printf '%f\n' | sort | tail -n1)
            if [[ -n $newest ]]; then
                newest=$(date -u -d "$(sed -E 's/^(....-..-..)-(..)-(..)-(..).*/\1 \2:\3:\4/' <<< "$newest")" +%s)
                while (( $(date +%s) <= newest )); do sleep 0.2; done
            fi
        fi
        sc_check "$op" "$dir" after-rerun 2>>"$errs"
        local o mode owner
        while read -r o; do
            [[ -n $o ]] || continue
            if [[ -L $o || ! -f $o ]]; then echo "    $(basename "$o") is not a regular file" >> "$errs"; continue; fi
            owner=$(stat -c %u "$o"); mode=$(stat -c %a "$o")
            [[ $owner == "$(id -u)" ]] || echo "    $(basename "$o") belongs to uid $owner" >> "$errs"
            [[ $mode == 600 ]] || echo "    $(basename "$o") has mode $mode, the database 600" >> "$errs"
        done < <(outputs_of "$op" "$dir")
    else
        echo "    the run failed ($rc): $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
    fi
    if [[ -s $errs ]]; then conf_fail "$name ($planted planted)" "$errs"; else conf_pass "$name ($planted planted)"; fi
}

# Another user holds a lock on everything of ours they can open, and on the directories.
lock_case() {
    local op=$1 name="$1 locks held by another user"
    local dir="$work/case" errs="$work/errs"
    : > "$errs"
    sc_setup "$op" "$dir"
    chmod -R a+rX "$dir"
    local pids=() f
    while read -r f; do
        as_nobody flock -s "$f" sleep 300 2>/dev/null &
        pids+=($!)
    done < <(find "$dir" -readable 2>/dev/null; echo "$dir")
    sleep 0.3
    mapfile -t cmd < <(sc_cmd "$op" "$dir")
    local rc
    timeout 120 "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/run.err"
    rc=$?
    kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
    [[ $rc != 124 ]] || echo "    the run hung (killed after 120 s)" >> "$errs"
    [[ $rc == 0 ]] || echo "    the run failed ($rc): $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
    [[ $rc != 0 ]] || sc_check "$op" "$dir" after-rerun 2>>"$errs"
    if [[ -s $errs ]]; then conf_fail "$name" "$errs"; else conf_pass "$name"; fi
}

# Saved references a pack must not trust (pack-refs): a symlink of another user to a
# copy of them, writable by the group or by others (the database is 0600), or another
# user's copy. The pack ignores them (--json: "none"), gives the bytes of the uninterrupted
# pack, removes the name and writes through nothing; "trusted" (ours, 0600) is the
# control: used.
refs_case() {
    local op=$1 how=$2 name="$1 Data.fs.refs $2"
    local dir="$work/case" errs="$work/errs" target="$work/refs-target"
    : > "$errs"
    sc_setup "$op" "$dir"
    chmod 777 "$dir"
    chmod 600 "$dir/Data.fs" "$dir/Data.fs.refs"
    printf 'precious' > "$victim"
    chmod 666 "$victim"
    rm -f "$target"
    local want=none
    case $how in
        trusted) want=used ;;
        symlink)
            cp "$SC_IN/S1.refs" "$target"; chmod 644 "$target"
            rm "$dir/Data.fs.refs"
            as_nobody ln -s "$target" "$dir/Data.fs.refs" || echo "    could not plant the symlink" >> "$errs" ;;
        group-writable) chmod 620 "$dir/Data.fs.refs" ;;
        other-writable) chmod 606 "$dir/Data.fs.refs" ;;
        foreign)
            rm "$dir/Data.fs.refs"
            as_nobody sh -c 'umask 022; cp "$1" "$2"' _ "$SC_IN/S1.refs" "$dir/Data.fs.refs" ||
                echo "    could not plant another user's copy" >> "$errs" ;;
    esac
    local rc
    timeout 120 "$ZODBFS" pack --json --tid "$SC_REFS_TID" "$dir/Data.fs" >"$SC_SCRATCH/run.json" 2>"$SC_SCRATCH/run.err"
    rc=$?
    [[ $rc != 124 ]] || echo "    the run hung (killed after 120 s)" >> "$errs"
    [[ $(cat "$victim") == precious ]] || echo "    the victim file was written" >> "$errs"
    if [[ $how == symlink && $(sha "$target") != "$(sha "$SC_IN/S1.refs")" ]]; then
        echo "    the symlink's target was written" >> "$errs"
    fi
    if [[ $rc == 0 ]]; then
        local got
        got=$(sc_saved_refs "$SC_SCRATCH/run.json")
        [[ $got == "$want" ]] || echo "    saved_references: $got, expected $want" >> "$errs"
        sc_check "$op" "$dir" after-rerun 2>>"$errs"
    else
        echo "    the run failed ($rc): $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
    fi
    rm -f "$target"
    if [[ -s $errs ]]; then conf_fail "$name" "$errs"; else conf_pass "$name"; fi
}

# The database lock held by another user's process (a ZODB running as the site's user):
# pack refuses at once, naming the holder, and changes nothing; pack --prepare takes no
# lock and saves the references as usual.
db_lock_case() {
    local op=$1 dir="$work/case" errs="$work/errs" name="$1 with the database open elsewhere"
    : > "$errs"
    sc_setup "$op" "$dir"
    chmod 777 "$dir"
    as_nobody sh -c 'exec 9>>"$1"; flock -x 9; printf " $$\n" >&9; exec sleep 300' _ "$dir/Data.fs.lock" &
    local holder=$!
    sleep 0.3
    mapfile -t cmd < <(sc_cmd "$op" "$dir")
    local rc
    timeout 60 "${cmd[@]}" >/dev/null 2>"$SC_SCRATCH/run.err"
    rc=$?
    kill $holder 2>/dev/null; wait $holder 2>/dev/null
    if [[ $op == prepare ]]; then
        [[ $rc == 0 ]] || echo "    exit $rc, expected 0: $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
        sc_check "$op" "$dir" after-rerun 2>>"$errs"
    else
        [[ $rc == 1 ]] || echo "    exit $rc, expected 1" >> "$errs"
        grep -q "locked by process" "$SC_SCRATCH/run.err" || echo "    the message names no holder: $(head -c 300 "$SC_SCRATCH/run.err")" >> "$errs"
        local src="$SC_IN/S1.fs"
        [[ $op == pack-blobs ]] && src="$SC_IN/B1.fs"
        [[ $(sha "$dir/Data.fs") == "$(sha "$src")" ]] || echo "    Data.fs changed" >> "$errs"
        [[ $op != pack-refs || $(sha "$dir/Data.fs.refs") == "$(sha "$SC_IN/S1.refs")" ]] ||
            echo "    Data.fs.refs changed" >> "$errs"
    fi
    if [[ -s $errs ]]; then conf_fail "$name" "$errs"; else conf_pass "$name"; fi
}

# Output = input: a restore onto a file of its own repository, recover and reindex onto
# their input, by path, hard link and symlink.
same_file_cases() {
    local dir="$work/case" how target errs="$work/errs" full
    for how in path hardlink symlink; do
        : > "$errs"
        sc_setup restore-over "$dir"
        full=$(ls "$dir/repo"/*.fs | head -1)
        case $how in
            path) target=$full ;;
            hardlink) target="$dir/link.fs"; ln "$full" "$target" ;;
            symlink) target="$dir/link.fs"; ln -s "$full" "$target" ;;
        esac
        local before
        before=$(sha "$full")
        "$REPOZO" -R -r "$dir/repo" -o "$target" >/dev/null 2>"$SC_SCRATCH/run.err" &&
            echo "    a restore onto its own repository file ($how) succeeded" >> "$errs"
        [[ $(sha "$full") == "$before" ]] || echo "    the repository's full backup changed ($how)" >> "$errs"
        if [[ -s $errs ]]; then conf_fail "restore onto its own repository ($how)" "$errs"; else conf_pass "restore onto its own repository ($how)"; fi
        for op in recover reindex; do
            : > "$errs"
            sc_setup "$op" "$dir"
            local input="$dir/Data.fs"; [[ $op == recover ]] && input="$dir/in.fs"
            case $how in
                path) target=$input ;;
                hardlink) target="$dir/link.fs"; ln "$input" "$target" ;;
                symlink) target="$dir/link.fs"; ln -s "$input" "$target" ;;
            esac
            if [[ $op == recover ]]; then
                "$ZODBFS" recover --force "$input" "$target" >/dev/null 2>"$SC_SCRATCH/run.err"
            else
                "$ZODBFS" reindex -o "$target" "$input" >/dev/null 2>"$SC_SCRATCH/run.err"
            fi
            [[ $? == 1 ]] || echo "    not refused" >> "$errs"
            [[ $(sha "$input") == "$(sha "$SC_IN/S1.fs")" ]] || echo "    the input changed" >> "$errs"
            if [[ -s $errs ]]; then conf_fail "$op onto its input ($how)" "$errs"; else conf_pass "$op onto its input ($how)"; fi
        done
    done
}

for op in $ops; do
    hostile_case "$op" symlinks
    hostile_case "$op" files
    lock_case "$op"
done
for op in $ops; do
    case $op in pack-*|prepare) db_lock_case "$op" ;; esac
    if [[ $op == pack-refs ]]; then
        for how in trusted symlink group-writable other-writable foreign; do refs_case "$op" "$how"; done
    fi
done
same_file_cases
echo "conformance-hostile time: $((SECONDS - t0)) s"
[[ $CONF_FAILED == 0 && -z ${CONFORMANCE_WORK:-} ]] && rm -rf "$work"
finish
