//! A compact binary encoding for durable records: fixed-width little-endian integers, length-prefixed
//! strings and lists, a tag byte per [`Value`]. Storage is written on every log append of every
//! replica, and JSON spent most of that time formatting and escaping; this encoding is a few
//! memcpys. It is for storage only (a node reads back what it wrote), not an interchange format:
//! histories and traces stay JSON.

use crate::history::{Op, Value};

/// Appends encoded fields to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Encoder::default()
    }
    /// An encoder with room for `bytes` (a record's usual size: growing a small buffer step by
    /// step costs more than the encoding).
    pub fn with_capacity(bytes: usize) -> Self {
        Encoder { bytes: Vec::with_capacity(bytes) }
    }
    /// The encoded bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    /// A length, as a `u64` (lengths beyond `usize` cannot occur in memory).
    pub fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }
    pub fn str(&mut self, value: &str) {
        self.len(value.len());
        self.bytes.extend_from_slice(value.as_bytes());
    }
    pub fn value(&mut self, value: &Value) {
        match value {
            Value::Nil => self.u8(0),
            Value::Bool(b) => {
                self.u8(1);
                self.u8(*b as u8);
            }
            Value::Int(i) => {
                self.u8(2);
                self.i64(*i);
            }
            Value::Str(s) => {
                self.u8(3);
                self.str(s);
            }
            Value::List(items) => {
                self.u8(4);
                self.len(items.len());
                for item in items {
                    self.value(item);
                }
            }
        }
    }
    pub fn op(&mut self, op: &Op) {
        self.str(&op.f);
        match &op.key {
            None => self.u8(0),
            Some(key) => {
                self.u8(1);
                self.value(key);
            }
        }
        self.value(&op.value);
    }
}

/// Reads fields back in the order an [`Encoder`] wrote them; `None` when the bytes end early or do
/// not decode (for storage, a bug: a node reads what it wrote).
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes }
    }
    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }
    pub fn str(&mut self) -> Option<&'a str> {
        let len = self.len()?;
        std::str::from_utf8(self.take(len)?).ok()
    }
    pub fn value(&mut self) -> Option<Value> {
        Some(match self.u8()? {
            0 => Value::Nil,
            1 => Value::Bool(self.u8()? != 0),
            2 => Value::Int(self.i64()?),
            3 => Value::Str(self.str()?.to_string()),
            4 => {
                let len = self.len()?;
                // Every value takes at least a byte: a corrupt length cannot reserve beyond the input.
                let mut items = Vec::with_capacity(len.min(self.bytes.len()));
                for _ in 0..len {
                    items.push(self.value()?);
                }
                Value::List(items)
            }
            _ => return None,
        })
    }
    pub fn op(&mut self) -> Option<Op> {
        let f = self.str()?.to_string();
        let key = match self.u8()? {
            0 => None,
            1 => Some(self.value()?),
            _ => return None,
        };
        let value = self.value()?;
        Some(Op { f, key, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(op: Op) {
        let mut encoder = Encoder::new();
        encoder.op(&op);
        encoder.u64(u64::MAX);
        let bytes = encoder.finish();
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(decoder.op(), Some(op));
        assert_eq!(decoder.u64(), Some(u64::MAX));
        assert!(decoder.is_empty());
        // Cut anywhere, the bytes do not decode (rather than decoding to something else).
        for cut in 0..bytes.len() - 8 {
            assert_eq!(Decoder::new(&bytes[..cut]).op(), None, "cut at {cut}");
        }
    }

    #[test]
    fn ops_round_trip() {
        check(Op::new("read", Some(Value::Int(3)), Value::Nil));
        check(Op::new("cas", None, Value::from(vec![1, -2])));
        check(Op::new(
            "txn",
            Some(Value::Str("k\u{e9}y".into())),
            Value::List(vec![Value::Bool(true), Value::List(vec![Value::Str("r".into()), Value::Nil])]),
        ));
    }
}
