//! The trace: every send, delivery, drop (and why), timer, fault, client operation and annotation,
//! with true time and the node's local time. The scheduler folds every event into a [`TraceHasher`]
//! (the trace hash that identifies a run) and hands it to an optional [`TraceSink`], which may stream
//! it to disk as JSON Lines so memory stays flat on long runs.

use crate::fault::Fault;
use crate::history::HistoryEvent;
use crate::net::DropReason;
use crate::node::{Message, NodeId, TimerId};
use crate::time::{LocalTime, SimTime};
use serde::{Deserialize, Serialize};
use std::hash::Hasher;
use std::io::{self, Write};

/// One trace event as the scheduler sees it: borrowed, so that recording costs nothing when no sink
/// is attached.
#[derive(Debug)]
pub struct TraceEvent<'a, M> {
    pub time: SimTime,
    /// The node the event happened at (the sender for sends, the receiver for deliveries), if any.
    pub node: Option<NodeId>,
    /// That node's local clock at the event.
    pub local_time: Option<LocalTime>,
    pub kind: TraceKind<'a, M>,
}

#[derive(Debug)]
pub enum TraceKind<'a, M> {
    Start,
    Send { to: NodeId, msg_id: u64, msg: &'a M, deliver_at: Option<SimTime> },
    Deliver { from: NodeId, msg_id: u64, msg: &'a M, corrupted: bool },
    Drop { from: NodeId, to: NodeId, msg_id: u64, msg: &'a M, reason: DropReason },
    Timer { timer: TimerId, tag: u64 },
    Fault { fault: &'a Fault },
    Client { event: &'a HistoryEvent },
    Annotate { text: &'a str },
}

impl<M> TraceKind<'_, M> {
    /// The `ev` field of the JSON record.
    pub fn name(&self) -> &'static str {
        match self {
            TraceKind::Start => "start",
            TraceKind::Send { .. } => "send",
            TraceKind::Deliver { .. } => "deliver",
            TraceKind::Drop { .. } => "drop",
            TraceKind::Timer { .. } => "timer",
            TraceKind::Fault { .. } => "fault",
            TraceKind::Client { .. } => "op",
            TraceKind::Annotate { .. } => "note",
        }
    }
}

/// Where trace events go besides the hash.
pub trait TraceSink<M> {
    /// `names` are the node names by index.
    fn record(&mut self, event: &TraceEvent<'_, M>, names: &[String]);
    /// Called once when the run ends; reports any error the sink held back.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One trace event as stored: the JSON Lines schema other tools (plots, replay filters) read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// True time, nanoseconds.
    pub t: u64,
    /// `start`, `send`, `deliver`, `drop`, `timer`, `fault`, `op` or `note`.
    pub ev: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The node's local time, nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Message id: a send, its delivery and its drop share it (a duplicate delivers the id twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Message type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Message content (its `Debug` rendering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// When a sent message is due (absent when dropped at send).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub corrupted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<HistoryEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl TraceRecord {
    /// The owned, storable form of an event.
    pub fn from_event<M: Message>(event: &TraceEvent<'_, M>, names: &[String]) -> TraceRecord {
        let name = |id: NodeId| names.get(id.index()).cloned().unwrap_or_else(|| id.to_string());
        let mut record = TraceRecord {
            t: event.time.0,
            ev: event.kind.name().to_string(),
            node: event.node.map(name),
            lt: event.local_time.map(|t| t.0),
            from: None,
            to: None,
            id: None,
            kind: None,
            msg: None,
            deliver_at: None,
            reason: None,
            corrupted: false,
            timer: None,
            tag: None,
            fault: None,
            op: None,
            text: None,
        };
        match &event.kind {
            TraceKind::Start => {}
            TraceKind::Send { to, msg_id, msg, deliver_at } => {
                record.from = event.node.map(name);
                record.to = Some(name(*to));
                record.id = Some(*msg_id);
                record.kind = Some(msg.kind().to_string());
                record.msg = Some(format!("{msg:?}"));
                record.deliver_at = deliver_at.map(|t| t.0);
            }
            TraceKind::Deliver { from, msg_id, msg, corrupted } => {
                record.from = Some(name(*from));
                record.to = event.node.map(name);
                record.id = Some(*msg_id);
                record.kind = Some(msg.kind().to_string());
                record.msg = Some(format!("{msg:?}"));
                record.corrupted = *corrupted;
            }
            TraceKind::Drop { from, to, msg_id, msg, reason } => {
                record.from = Some(name(*from));
                record.to = Some(name(*to));
                record.id = Some(*msg_id);
                record.kind = Some(msg.kind().to_string());
                record.msg = Some(format!("{msg:?}"));
                record.reason = Some(reason.as_str().to_string());
            }
            TraceKind::Timer { timer, tag } => {
                record.timer = Some(timer.0);
                record.tag = Some(*tag);
            }
            TraceKind::Fault { fault } => record.fault = Some((*fault).clone()),
            TraceKind::Client { event } => record.op = Some((*event).clone()),
            TraceKind::Annotate { text } => record.text = Some(text.to_string()),
        }
        record
    }
}

/// Streams the trace as JSON Lines to any writer (the caller chooses the file and buffering).
pub struct JsonlTraceWriter<W: Write> {
    out: W,
    error: Option<io::Error>,
    events: u64,
}

impl<W: Write> JsonlTraceWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlTraceWriter { out, error: None, events: 0 }
    }
    pub fn events_written(&self) -> u64 {
        self.events
    }
}

impl<W: Write, M: Message> TraceSink<M> for JsonlTraceWriter<W> {
    fn record(&mut self, event: &TraceEvent<'_, M>, names: &[String]) {
        if self.error.is_some() {
            return;
        }
        let record = TraceRecord::from_event(event, names);
        let result = serde_json::to_writer(&mut self.out, &record)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        match result {
            Ok(()) => self.events += 1,
            Err(e) => self.error = Some(e),
        }
    }
    fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

/// Keeps the trace in memory (for tests and short runs), shared so the caller can read it after the
/// simulation took the sink.
#[derive(Clone, Default)]
pub struct MemoryTrace {
    records: std::rc::Rc<std::cell::RefCell<Vec<TraceRecord>>>,
}

impl MemoryTrace {
    pub fn new() -> Self {
        MemoryTrace::default()
    }
    /// A copy of the records so far.
    pub fn records(&self) -> Vec<TraceRecord> {
        self.records.borrow().clone()
    }
}

impl<M: Message> TraceSink<M> for MemoryTrace {
    fn record(&mut self, event: &TraceEvent<'_, M>, names: &[String]) {
        self.records.borrow_mut().push(TraceRecord::from_event(event, names));
    }
}

/// The trace hash: a 64-bit digest of every event, in order. Pinned here (not `DefaultHasher`, whose
/// algorithm may change between Rust releases), fed the same way on every platform.
#[derive(Clone, Debug)]
pub struct TraceHasher {
    state: u64,
    words: u64,
}

const MIX_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher { state: 0x243F_6A88_85A3_08D3, words: 0 }
    }
}

impl TraceHasher {
    pub fn new() -> Self {
        TraceHasher::default()
    }

    #[inline]
    pub fn word(&mut self, value: u64) {
        let mixed = (self.state ^ value).wrapping_mul(MIX_MULTIPLIER);
        self.state = mixed.rotate_left(29) ^ (mixed >> 31);
        self.words += 1;
    }

    /// The digest of everything so far (finalised with splitmix64's mixer, including the length).
    pub fn digest(&self) -> u64 {
        let mut z = self.state ^ self.words.wrapping_mul(MIX_MULTIPLIER);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The digest as 16 hex digits, the form reports show.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.digest())
    }
}

impl Hasher for TraceHasher {
    fn finish(&self) -> u64 {
        self.digest()
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64);
    }
    fn write_u16(&mut self, i: u16) {
        self.word(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    fn write_i64(&mut self, i: i64) {
        self.word(i as u64);
    }
    fn write_isize(&mut self, i: isize) {
        self.word(i as i64 as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn hasher_is_order_sensitive_and_length_sensitive() {
        let digest = |words: &[u64]| {
            let mut h = TraceHasher::new();
            words.iter().for_each(|w| h.word(*w));
            h.digest()
        };
        assert_ne!(digest(&[1, 2]), digest(&[2, 1]));
        assert_ne!(digest(&[0]), digest(&[0, 0]));
        assert_eq!(digest(&[5, 6, 7]), digest(&[5, 6, 7]));
    }

    #[test]
    fn hashing_a_value_is_platform_independent_by_construction() {
        // usize and u64 feed the same word, so 32- and 64-bit targets agree.
        let mut a = TraceHasher::new();
        3usize.hash(&mut a);
        let mut b = TraceHasher::new();
        3u64.hash(&mut b);
        assert_eq!(a.digest(), b.digest());
    }
}
