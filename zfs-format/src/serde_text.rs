//! How reports serialize what the file holds: ids as 16 hex digits, magics as text, and
//! byte strings (a transaction's user and description) as text when they are UTF-8, else
//! as `{"hex": "..."}`, never converted with loss.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::ids::{Oid, Tid};
use crate::storage::{EndReason, Magic};

impl Serialize for Oid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Tid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Magic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for EndReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// Bytes as text when they are UTF-8, else as `{"hex": "..."}` (for `serialize_with`).
pub fn text<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(t) => s.serialize_str(t),
        Err(_) => {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("hex", &hex(bytes))?;
            m.end()
        }
    }
}

/// Bytes as lowercase hex digits (for `serialize_with`: references of any length).
pub fn hex_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Txn<'a> {
        tid: Tid,
        #[serde(serialize_with = "text")]
        user: &'a [u8],
        #[serde(serialize_with = "hex_bytes")]
        target: &'a [u8],
    }

    #[test]
    fn utf8_is_text_and_anything_else_is_hex_without_loss() {
        let v = |user: &[u8]| {
            serde_json::to_value(Txn {
                tid: Tid::from_u64(0x1a),
                user,
                target: &[0, 0xff, 3],
            })
            .expect("serializes")
        };
        let ok = v("/ admin é".as_bytes());
        assert_eq!(ok["user"], "/ admin é");
        assert_eq!(ok["tid"], "000000000000001a");
        assert_eq!(ok["target"], "00ff03");
        let latin1 = v(b"/ caf\xe9");
        assert_eq!(latin1["user"]["hex"], "2f20636166e9");
    }
}
