//! Python's `getopt.getopt` rules (POSIX style, no permutation), as repozo parses its
//! command line: bundled short flags, attached or separate values, `--opt=value`, unique
//! prefixes of long options, and the same error texts.

/// One parsed option: its name as Python reports it (`-r` or `--repository`) and its value
/// (empty for flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    /// `-x` or `--long-name` (the full name, even when a prefix was typed).
    pub name: String,
    /// The value, empty for flags.
    pub value: String,
}

/// Parses `args` with a short spec like `"BRVvhr:f:"` and long names (`"repository="` takes
/// a value). Returns the options and the remaining arguments, or getopt's error text.
pub fn getopt(
    args: &[String],
    short: &str,
    long: &[&str],
) -> Result<(Vec<Opt>, Vec<String>), String> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        if a == "--" {
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (typed, mut value) = match body.split_once('=') {
                Some((o, v)) => (o, Some(v.to_string())),
                None => (body, None),
            };
            let (has_arg, name) = long_has_arg(typed, long)?;
            if has_arg {
                if value.is_none() {
                    let Some(next) = args.get(i) else {
                        return Err(format!("option --{name} requires argument"));
                    };
                    value = Some(next.clone());
                    i += 1;
                }
            } else if value.is_some() {
                return Err(format!("option --{name} must not have an argument"));
            }
            opts.push(Opt {
                name: format!("--{name}"),
                value: value.unwrap_or_default(),
            });
        } else {
            let mut rest: &str = &a[1..];
            while let Some(c) = rest.chars().next() {
                rest = &rest[c.len_utf8()..];
                if short_has_arg(c, short)? {
                    let value = if rest.is_empty() {
                        let Some(next) = args.get(i) else {
                            return Err(format!("option -{c} requires argument"));
                        };
                        i += 1;
                        next.clone()
                    } else {
                        rest.to_string()
                    };
                    rest = "";
                    opts.push(Opt {
                        name: format!("-{c}"),
                        value,
                    });
                } else {
                    opts.push(Opt {
                        name: format!("-{c}"),
                        value: String::new(),
                    });
                }
            }
        }
    }
    Ok((opts, args[i..].to_vec()))
}

fn long_has_arg(typed: &str, long: &[&str]) -> Result<(bool, String), String> {
    let possible: Vec<&&str> = long.iter().filter(|o| o.starts_with(typed)).collect();
    if possible.is_empty() {
        return Err(format!("option --{typed} not recognized"));
    }
    if possible.iter().any(|o| **o == typed) {
        return Ok((false, typed.to_string()));
    }
    if possible.iter().any(|o| o.strip_suffix('=') == Some(typed)) {
        return Ok((true, typed.to_string()));
    }
    if possible.len() > 1 {
        return Err(format!("option --{typed} not a unique prefix"));
    }
    let m = possible[0];
    Ok(match m.strip_suffix('=') {
        Some(n) => (true, n.to_string()),
        None => (false, m.to_string()),
    })
}

fn short_has_arg(c: char, short: &str) -> Result<bool, String> {
    let mut chars = short.chars().peekable();
    while let Some(s) = chars.next() {
        if s == c && s != ':' {
            return Ok(chars.peek() == Some(&':'));
        }
    }
    Err(format!("option -{c} not recognized"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tables the binary itself parses with.
    use crate::{LONG, SHORT};

    type Parsed = (Vec<(String, String)>, Vec<String>);

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        getopt(&args, SHORT, LONG)
            .map(|(o, r)| (o.into_iter().map(|o| (o.name, o.value)).collect(), r))
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn python_getopt_cases() {
        // Results of Python 3.11 getopt.getopt with repozo's specs.
        assert_eq!(
            parse(&["-BQzr/dir"]).expect("ok").0,
            pairs(&[("-B", ""), ("-Q", ""), ("-z", ""), ("-r", "/dir")])
        );
        assert_eq!(
            parse(&["-r", "d", "-r=x"]).expect("ok").0,
            pairs(&[("-r", "d"), ("-r", "=x")])
        );
        assert_eq!(
            parse(&["--repo=x", "--verif", "--k"]).expect("ok").0,
            pairs(&[
                ("--repository", "x"),
                ("--verify", ""),
                ("--kill-old-on-full", "")
            ])
        );
        assert_eq!(
            parse(&["--repository", "x"]).expect("ok").0,
            pairs(&[("--repository", "x")])
        );
        assert_eq!(
            parse(&["-B", "a", "-R"]).expect("ok"),
            (
                pairs(&[("-B", "")]),
                vec!["a".to_string(), "-R".to_string()]
            )
        );
        assert_eq!(
            parse(&["-B", "--", "-R"]).expect("ok").1,
            vec!["-R".to_string()]
        );
        assert_eq!(parse(&["-x"]).expect_err("bad"), "option -x not recognized");
        assert_eq!(
            parse(&["--crash-please"]).expect_err("bad"),
            "option --crash-please not recognized"
        );
        assert_eq!(
            parse(&["-r"]).expect_err("bad"),
            "option -r requires argument"
        );
        assert_eq!(
            parse(&["--repo"]).expect_err("bad"),
            "option --repository requires argument"
        );
        assert_eq!(
            parse(&["--full=1"]).expect_err("bad"),
            "option --full must not have an argument"
        );
        assert_eq!(
            parse(&["--ver"]).expect_err("bad"),
            "option --ver not a unique prefix"
        );
        assert_eq!(parse(&["-"]).expect("ok").1, vec!["-".to_string()]);
    }
}
