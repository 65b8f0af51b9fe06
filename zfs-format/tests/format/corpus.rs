//! The real files of the corpus (`$ZFS_CORPUS`, default `../shared/corpus/real` beside the
//! repository; FS21 and FS30), when present: every one walks
//! cleanly, its index survives a save/load round trip and passes ZODB's sanity check, and
//! every record's pickle is readable. ZODB's own answers for them are compared live by the
//! conformance suite (`testdata/oracle/conformance.sh`).

use zfs_format::pickle::{references, StringMode};
use zfs_format::{index_file, scan, FileStorage, Magic, NoProgress};

#[test]
#[ignore = "needs the real corpus: ZFS_CORPUS, default ../shared/corpus/real"]
fn real_files_read_cleanly() {
    for path in zfs_testdata::paths::corpus_files() {
        let fs = FileStorage::open(&path).expect("real file opens");
        let s = scan::build_index(&fs, &NoProgress)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bytes = index_file::index_bytes(&s.index, s.end.pos);
        let (pos, ix) = index_file::load_index(&bytes).expect("round trip");
        assert_eq!((pos, &ix), (s.end.pos, &s.index));
        if s.end.pos >= 100 {
            assert!(
                index_file::check_sanity(&fs, &ix, pos).is_some(),
                "{}: sane",
                path.display()
            );
        }
        let mode = if fs.magic() == Magic::Fs21 {
            StringMode::Bytes
        } else {
            StringMode::Ascii
        };
        for t in fs.transactions() {
            for r in t.expect("walks").records() {
                let r = r.expect("record");
                if let Some(d) = r.data() {
                    references(d, mode)
                        .unwrap_or_else(|e| panic!("{} at {}: {e}", path.display(), r.pos));
                }
            }
        }
    }
}
