//! Names in a repository: the UTC stamp of a run, data-file names and their extensions, and
//! path strings built as Python's `os.path.join(<repository as given>, <name>)`.

use std::time::{SystemTime, UNIX_EPOCH};

use zfs_format::timestamp::UtcTime;

/// A run's time stamp: `YYYY-MM-DD-hh-mm-ss`, UTC, whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Seconds since the Unix epoch.
    pub secs: i64,
}

impl Stamp {
    /// The current time, from the system clock (so `faketime` works on it).
    pub fn now() -> Stamp {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX) - 1,
        };
        Stamp { secs }
    }

    /// The stamp of a data file's root (`2010-05-14-12-52-31`), if it is one.
    pub fn parse(root: &str) -> Option<Stamp> {
        let b = root.as_bytes();
        if b.len() != 19 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let s = root.get(r)?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        for i in [4, 7, 10, 13, 16] {
            if b[i] != b'-' {
                return None;
            }
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        // Two digits each: the casts are lossless. Fields past their range (month 13)
        // count on, as Python's string comparison of names does not care either.
        let utc = UtcTime {
            year,
            month: month as i32,
            day: day as i32,
            hour: hour as i32,
            minute: minute as i32,
            second: second as i32,
        };
        Some(Stamp {
            secs: utc.to_unix()?,
        })
    }

    /// The next second.
    pub fn next(self) -> Stamp {
        Stamp {
            secs: self.secs + 1,
        }
    }

    /// `YYYY-MM-DD-hh-mm-ss`.
    pub fn format(self) -> String {
        let t = UtcTime::from_unix(self.secs);
        format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }
}

/// The kind of a data file, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `.fs`: a full backup.
    Full,
    /// `.fsz`: a gzipped full backup.
    FullGz,
    /// `.deltafs`: an incremental backup.
    Delta,
    /// `.deltafsz`: a gzipped incremental backup.
    DeltaGz,
}

impl Kind {
    /// The extension with its dot.
    pub fn ext(self) -> &'static str {
        match self {
            Kind::Full => ".fs",
            Kind::FullGz => ".fsz",
            Kind::Delta => ".deltafs",
            Kind::DeltaGz => ".deltafsz",
        }
    }
    /// The kind for a full or incremental backup, gzipped or not.
    pub fn of(full: bool, gzip: bool) -> Kind {
        match (full, gzip) {
            (true, false) => Kind::Full,
            (true, true) => Kind::FullGz,
            (false, false) => Kind::Delta,
            (false, true) => Kind::DeltaGz,
        }
    }
    /// True for `.fs`/`.fsz`.
    pub fn is_full(self) -> bool {
        matches!(self, Kind::Full | Kind::FullGz)
    }
    /// True for the gzipped kinds (names ending in `fsz`).
    pub fn is_gzip(self) -> bool {
        matches!(self, Kind::FullGz | Kind::DeltaGz)
    }
}

/// A data file's name split into root and kind: `Some` exactly for the names repozo uses
/// (`\d{4}(-\d\d){5}\.(delta)?fsz?`).
pub fn parse_data_name(name: &str) -> Option<(&str, Kind)> {
    let root = name.get(..19)?;
    Stamp::parse(root)?;
    let kind = match name.get(19..)? {
        ".fs" => Kind::Full,
        ".fsz" => Kind::FullGz,
        ".deltafs" => Kind::Delta,
        ".deltafsz" => Kind::DeltaGz,
        _ => return None,
    };
    Some((root, kind))
}

/// `os.path.join(repo, name)` for a plain name: `repo/name`, without doubling a final `/`.
pub fn join(repo: &str, name: &str) -> String {
    if repo.is_empty() || repo.ends_with('/') {
        format!("{repo}{name}")
    } else {
        format!("{repo}/{name}")
    }
}

/// Python's `os.path.splitext`: the name without its last extension.
pub fn strip_ext(path: &str) -> &str {
    let base_start = path.rfind('/').map_or(0, |i| i + 1);
    let base = &path[base_start..];
    let trimmed = base.trim_start_matches('.');
    match trimmed.rfind('.') {
        Some(i) => &path[..base_start + (base.len() - trimmed.len()) + i],
        None => path,
    }
}

/// The last path component (`os.path.basename`).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_format_like_repozo() {
        // test_repozo.py: gmtime (2010, 5, 14, 12, 52, 31).
        let s = Stamp::parse("2010-05-14-12-52-31").expect("valid");
        assert_eq!(s.secs, 1273841551);
        assert_eq!(s.format(), "2010-05-14-12-52-31");
        assert_eq!(
            format!("{}{}", s.format(), Kind::of(true, true).ext()),
            "2010-05-14-12-52-31.fsz"
        );
        assert_eq!(Stamp { secs: 0 }.format(), "1970-01-01-00-00-00");
        assert_eq!(Stamp { secs: 951782400 }.format(), "2000-02-29-00-00-00");
        for secs in [0i64, 86399, 951868800, 4102444799, 1_800_000_000] {
            assert_eq!(Stamp::parse(&Stamp { secs }.format()), Some(Stamp { secs }));
        }
    }

    proptest::proptest! {
        #[test]
        fn stamps_parse_back_and_sort_like_their_times(
            a in -62_167_219_200i64..253_402_300_800,
            b in -62_167_219_200i64..253_402_300_800,
        ) {
            // Years 0000 to 9999: names of four-digit years.
            let (sa, sb) = (Stamp { secs: a }, Stamp { secs: b });
            proptest::prop_assert_eq!(Stamp::parse(&sa.format()), Some(sa));
            proptest::prop_assert_eq!(sa.format().cmp(&sb.format()), a.cmp(&b));
        }
    }

    #[test]
    fn out_of_range_fields_count_on() {
        // Python compares names as strings; a hand-made name with month 13 still parses.
        assert_eq!(
            Stamp::parse("2010-13-01-00-00-00").map(Stamp::format),
            Some("2011-01-01-00-00-00".to_string())
        );
    }

    #[test]
    fn data_names() {
        assert_eq!(
            parse_data_name("2010-05-14-12-52-31.fs"),
            Some(("2010-05-14-12-52-31", Kind::Full))
        );
        assert_eq!(
            parse_data_name("2010-05-14-12-52-31.deltafsz"),
            Some(("2010-05-14-12-52-31", Kind::DeltaGz))
        );
        for bad in [
            "2010-05-14-12-52-31.dat",
            "2010-05-14-12-52-31.index",
            "tmp.tmp",
            "2010-05-14-12-52.fs",
            "x010-05-14-12-52-31.fs",
            "2010-05-14-12-52-31.fs.bak",
        ] {
            assert_eq!(parse_data_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn joins_like_os_path_join() {
        assert_eq!(join("rel/", "a.fs"), "rel/a.fs");
        assert_eq!(join("./rel", "a.fs"), "./rel/a.fs");
        assert_eq!(join("/abs", "a.fs"), "/abs/a.fs");
        assert_eq!(
            strip_ext("/r/2010-05-14-12-52-31.deltafs"),
            "/r/2010-05-14-12-52-31"
        );
        assert_eq!(strip_ext("/r.d/noext"), "/r.d/noext");
        assert_eq!(strip_ext("/r/.hidden"), "/r/.hidden");
        assert_eq!(basename("/r/x.fs"), "x.fs");
    }
}
