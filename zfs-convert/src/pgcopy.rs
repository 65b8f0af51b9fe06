//! PostgreSQL's binary `COPY` format: a header, rows of length-prefixed fields, a trailer.
//!
//! Field encodings used here: `bigint` 8 bytes big-endian, `boolean` 1 byte, `oid` 4 bytes
//! big-endian, `bytea` and `char(n)` their raw bytes, NULL a length of -1.

/// The signature, flags and header extension length that open a binary COPY stream.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The field count -1 that ends a binary COPY stream.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];

/// Rows being encoded into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) buf: Vec<u8>,
}

impl Rows {
    /// Starts a row of `fields` fields.
    pub(crate) fn row(&mut self, fields: u16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }
    /// A `bigint` field.
    pub(crate) fn int8(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A `boolean` field.
    pub(crate) fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(v));
        self
    }
    /// An `oid` field.
    pub(crate) fn oid(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A `bytea` (or `char`) field; `None` is NULL.
    pub(crate) fn bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            Some(b) => {
                // A field is at most 1 GB in PostgreSQL; a longer one is refused by the
                // server, so the length's sign bit is never reached by a valid row.
                let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
                self.buf.extend_from_slice(&len.to_be_bytes());
                self.buf.extend_from_slice(b);
            }
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        self
    }
    /// Bytes encoded so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    /// Takes the encoded bytes, leaving the buffer empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_length_prefixed_fields() {
        let mut r = Rows::default();
        r.row(4)
            .int8(7)
            .boolean(true)
            .bytes(None)
            .bytes(Some(b"ab"));
        assert_eq!(
            r.buf,
            [
                &[0, 4][..],
                &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7],
                &[0, 0, 0, 1, 1],
                &[0xff, 0xff, 0xff, 0xff],
                &[0, 0, 0, 2, b'a', b'b'],
            ]
            .concat()
        );
        assert_eq!(HEADER.len(), 19);
    }
}
