//! Nodes: sans-IO state machines with synchronous handlers. Everything a handler does to the world
//! (send, set or cancel a timer, record client history, annotate) is buffered in its [`Ctx`] as data
//! and applied by the scheduler afterwards.

use crate::history::{EventType, Op, ProcessId};
use crate::rng::SimRng;
use crate::time::{duration_nanos, LocalTime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::time::Duration;

/// A node of the simulation, numbered from 0 in the order nodes were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A timer, unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub u64);

/// What nodes send each other. `Hash` feeds the trace hash, so two runs that differ in any message
/// content have different hashes.
pub trait Message: Clone + Debug + Hash + 'static {
    /// The message type, for traces, diagrams and filters (`"AppendEntries"`).
    fn kind(&self) -> &'static str {
        "msg"
    }
    /// Size on the wire in bytes, for bandwidth delay and the message-size limit.
    fn size_bytes(&self) -> usize {
        64
    }
    /// The message as corruption on the wire leaves it; `noise` is a random word to mangle it with.
    /// `None` (the default): the receiver's checksum catches it and the message is dropped. Return a
    /// mangled copy to test protocols without checksums.
    fn corrupt(&self, _noise: u64) -> Option<Self> {
        None
    }
}

impl Message for u64 {}
impl Message for String {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

/// A node: handlers run to completion, one event at a time, at a single instant of simulated time.
pub trait Node: 'static {
    type Msg: Message;
    /// Called when the node starts, and again after each restart (on a fresh value from the factory).
    fn on_start(&mut self, _ctx: &mut Ctx<'_, Self::Msg>) {}
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Msg>, from: NodeId, msg: Self::Msg);
    /// A timer set with `ctx.set_timer(after, tag)` fired.
    fn on_timer(&mut self, _ctx: &mut Ctx<'_, Self::Msg>, _timer: TimerId, _tag: u64) {}
}

/// Durable storage: survives crashes; a restarted node's factory rebuilds state from it. Keys are
/// ordered, so iteration is deterministic.
///
/// Besides the key-value records there is one durable *log*: records numbered by consecutive
/// indices, appended at the end, truncated from an index on, compacted up to one. A replicated log
/// (Raft's, a Paxos acceptor's) writes a record per entry, and a numbered log costs far less than a
/// formatted key per entry in an ordered map of strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    entries: BTreeMap<String, Vec<u8>>,
    /// `log[i]` is the record of index `log_start + i`.
    log: VecDeque<Vec<u8>>,
    log_start: u64,
    writes: u64,
}

impl Storage {
    pub fn put_bytes(&mut self, key: &str, value: Vec<u8>) {
        self.writes += 1;
        self.entries.insert(key.to_string(), value);
    }
    pub fn get_bytes(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }
    /// Stores a value as JSON.
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) {
        let bytes = serde_json::to_vec(value).expect("storage values serialise to JSON");
        self.put_bytes(key, bytes);
    }
    /// Reads a value stored with [`Storage::put`]; `None` when absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.entries.get(key)?;
        Some(serde_json::from_slice(bytes).expect("storage holds what put wrote"))
    }
    pub fn remove(&mut self, key: &str) -> bool {
        self.writes += 1;
        self.entries.remove(key).is_some()
    }
    /// Keys starting with `prefix`, in order.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.range(prefix.to_string()..).map(|(k, _)| k.as_str()).take_while(move |k| k.starts_with(prefix))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// How many writes (puts and removes, log records written and removed) the node has made, for
    /// cost figures.
    pub fn write_count(&self) -> u64 {
        self.writes
    }

    /// Writes log record `index`: the next one ([`Storage::log_end`]), or any index into an empty
    /// log (which then starts there).
    pub fn log_put(&mut self, index: u64, record: Vec<u8>) {
        if self.log.is_empty() {
            self.log_start = index;
        }
        assert_eq!(index, self.log_end(), "log records are written at the end of the log");
        self.writes += 1;
        self.log.push_back(record);
    }
    /// The record of `index`, if the log holds it.
    pub fn log_get(&self, index: u64) -> Option<&[u8]> {
        let offset = usize::try_from(index.checked_sub(self.log_start)?).ok()?;
        self.log.get(offset).map(Vec::as_slice)
    }
    /// One past the index of the last record (the log's start when it is empty).
    pub fn log_end(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }
    /// Removes the records of `from` and every later index (a conflicting suffix).
    pub fn log_truncate(&mut self, from: u64) {
        let keep = from.saturating_sub(self.log_start).min(self.log.len() as u64) as usize;
        self.writes += (self.log.len() - keep) as u64;
        self.log.truncate(keep);
    }
    /// Removes the records up to and including `through` (they went into a snapshot); the log
    /// continues at `through + 1`.
    pub fn log_compact(&mut self, through: u64) {
        let remove = (through + 1).saturating_sub(self.log_start).min(self.log.len() as u64) as usize;
        self.writes += remove as u64;
        self.log.drain(..remove);
        self.log_start = self.log_start.max(through + 1);
    }
    /// The log's records with their indices, in order.
    pub fn log_records(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.log.iter().enumerate().map(|(i, record)| (self.log_start + i as u64, record.as_slice()))
    }
}

/// An effect a handler asked for, applied by the scheduler in the order asked.
#[derive(Debug)]
pub(crate) enum Effect<M> {
    Send { to: NodeId, msg: M },
    SetTimer { id: TimerId, deadline: LocalTime, tag: u64 },
    CancelTimer { id: TimerId },
    History { process: ProcessId, kind: EventType, op: Op, error: Option<String> },
    Annotate { text: String },
}

/// A handler's view of the world: its identity, its local clock, its random stream, its durable
/// storage, and a buffer for the effects it asks for.
pub struct Ctx<'a, M> {
    pub(crate) id: NodeId,
    pub(crate) local_now: LocalTime,
    pub(crate) node_count: usize,
    pub(crate) rng: &'a mut SimRng,
    pub(crate) storage: &'a mut Storage,
    pub(crate) effects: &'a mut Vec<Effect<M>>,
    pub(crate) next_timer_id: &'a mut u64,
}

impl<'a, M: Message> Ctx<'a, M> {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// How many nodes the simulation has (servers and clients alike).
    pub fn node_count(&self) -> usize {
        self.node_count
    }
    /// The node's own clock: skewed, drifting, possibly jumping. Never true time.
    pub fn now(&self) -> LocalTime {
        self.local_now
    }
    /// Sends `msg` to `to` through the simulated network.
    pub fn send(&mut self, to: NodeId, msg: M) {
        self.effects.push(Effect::Send { to, msg });
    }
    /// Sends a copy of `msg` to each of `to`.
    pub fn send_all(&mut self, to: impl IntoIterator<Item = NodeId>, msg: &M) {
        for node in to {
            self.effects.push(Effect::Send { to: node, msg: msg.clone() });
        }
    }
    /// Sets a timer that fires after `after` of *local* time, with a tag the handler gets back.
    pub fn set_timer(&mut self, after: Duration, tag: u64) -> TimerId {
        let id = TimerId(*self.next_timer_id);
        *self.next_timer_id += 1;
        let deadline = LocalTime(self.local_now.0.saturating_add(duration_nanos(after).min(i64::MAX as u64) as i64));
        self.effects.push(Effect::SetTimer { id, deadline, tag });
        id
    }
    /// Cancels a timer; cancelling one that fired or was cancelled already does nothing.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer { id });
    }
    /// This node's random stream (independent of every other node's).
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }
    /// Durable storage: what is written here survives a crash.
    pub fn storage(&mut self) -> &mut Storage {
        self.storage
    }
    /// Records that client `process` invoked `op`.
    pub fn invoke(&mut self, process: ProcessId, op: Op) {
        self.effects.push(Effect::History { process, kind: EventType::Invoke, op, error: None });
    }
    /// Records that `process`'s operation completed, with `op` carrying the result.
    pub fn ok(&mut self, process: ProcessId, op: Op) {
        self.effects.push(Effect::History { process, kind: EventType::Ok, op, error: None });
    }
    /// Records that `process`'s operation certainly did not take effect.
    pub fn fail(&mut self, process: ProcessId, op: Op, error: &str) {
        self.effects.push(Effect::History { process, kind: EventType::Fail, op, error: Some(error.to_string()) });
    }
    /// Records that `process`'s operation has an unknown outcome (e.g. it timed out).
    pub fn info(&mut self, process: ProcessId, op: Op, error: &str) {
        self.effects.push(Effect::History { process, kind: EventType::Info, op, error: Some(error.to_string()) });
    }
    /// Free text into the trace, at this node and instant.
    pub fn annotate(&mut self, text: impl Into<String>) {
        self.effects.push(Effect::Annotate { text: text.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_round_trips_typed_values_and_lists_keys_in_order() {
        let mut storage = Storage::default();
        storage.put("raft/term", &7u64);
        storage.put("raft/log/00000002", &"b");
        storage.put("raft/log/00000001", &"a");
        storage.put("other", &1);
        assert_eq!(storage.get::<u64>("raft/term"), Some(7));
        assert_eq!(storage.get::<u64>("missing"), None);
        let keys: Vec<&str> = storage.keys_with_prefix("raft/log/").collect();
        assert_eq!(keys, ["raft/log/00000001", "raft/log/00000002"]);
        assert!(storage.remove("other"));
        assert_eq!(storage.write_count(), 5);
    }

    #[test]
    fn the_log_appends_truncates_and_compacts_by_index() {
        let mut storage = Storage::default();
        let records = |storage: &Storage| storage.log_records().map(|(i, r)| (i, r.to_vec())).collect::<Vec<_>>();
        for index in 1..=5 {
            storage.log_put(index, vec![index as u8]);
        }
        assert_eq!(storage.log_get(3), Some(&[3u8][..]));
        assert_eq!(storage.log_get(0), None);
        assert_eq!(storage.log_get(6), None);
        storage.log_truncate(4);
        assert_eq!(storage.log_end(), 4);
        storage.log_compact(2);
        assert_eq!(records(&storage), vec![(3, vec![3])]);
        // Compacting past the end empties the log; it continues after the compacted index.
        storage.log_compact(9);
        assert_eq!(storage.log_end(), 10);
        storage.log_put(10, vec![10]);
        assert_eq!(records(&storage), vec![(10, vec![10])]);
        assert_eq!(storage.write_count(), 5 + 2 + 2 + 1 + 1);
    }

    #[test]
    #[should_panic(expected = "at the end of the log")]
    fn a_log_record_past_the_end_is_a_bug() {
        let mut storage = Storage::default();
        storage.log_put(1, vec![]);
        storage.log_put(3, vec![]);
    }
}
