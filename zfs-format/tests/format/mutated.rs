//! Damaged files never make the reader panic: random byte flips, truncations and length
//! rewrites of the fixtures, walked in every way the crate offers.

use proptest::prelude::*;
use zfs_format::{index_file, scan, FileStorage, NoProgress};

fn walk_everything(bytes: &[u8]) {
    let Ok(fs) = FileStorage::from_data(bytes, "mutated.fs".into()) else {
        return;
    };
    let end = fs.end();
    for t in fs.transactions() {
        let Ok(t) = t else { break };
        for r in t.records() {
            let Ok(r) = r else { break };
            let _ = fs.resolve(&r);
            if let Some(d) = r.data() {
                let _ = zfs_format::pickle::references(d, zfs_format::pickle::StringMode::Bytes);
                let _ = zfs_format::pickle::class_name(d, zfs_format::pickle::StringMode::Bytes);
            }
        }
    }
    for t in fs.transactions_rev(fs.len()) {
        if t.is_err() {
            break;
        }
    }
    if let Ok(end) = end {
        for t in fs.transactions_rev(end.pos) {
            if t.is_err() {
                break;
            }
        }
    }
    if let Ok(s) = scan::build_index(&fs, &NoProgress) {
        let _ = index_file::check_sanity(&fs, &s.index, s.end.pos);
        let bytes = index_file::index_bytes(&s.index, s.end.pos);
        let (pos, ix) = index_file::load_index(&bytes).expect("our own index loads");
        assert_eq!(pos, s.end.pos);
        assert_eq!(ix, s.index);
    }
}

fn sample() -> Vec<u8> {
    let (_, path, _) = crate::fixtures()
        .into_iter()
        .max_by_key(|(_, p, _)| {
            let n = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            // The largest fixture under 200 kB keeps each case fast.
            if n < 200_000 {
                n
            } else {
                0
            }
        })
        .expect("fixtures exist");
    std::fs::read(path).expect("fixture readable")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20)) {
        let mut b = sample();
        for (i, v) in flips {
            let at = i.index(b.len());
            b[at] = v;
        }
        walk_everything(&b);
    }

    #[test]
    fn truncated(cut in any::<prop::sample::Index>()) {
        let b = sample();
        let n = cut.index(b.len() + 1);
        walk_everything(&b[..n]);
    }

    #[test]
    fn rewritten_lengths(at in any::<prop::sample::Index>(), v in prop_oneof![Just(0u64), Just(u64::MAX), Just(1u64 << 63), any::<u64>(), 0u64..100_000]) {
        let mut b = sample();
        let i = at.index(b.len().saturating_sub(8).max(1));
        let end = (i + 8).min(b.len());
        b[i..end].copy_from_slice(&v.to_be_bytes()[..end - i]);
        walk_everything(&b);
    }

    #[test]
    fn random_files(body in proptest::collection::vec(any::<u8>(), 0..2000), magic in prop_oneof![Just(*b"FS30"), Just(*b"FS21")]) {
        let mut b = magic.to_vec();
        b.extend_from_slice(&body);
        walk_everything(&b);
    }
}
