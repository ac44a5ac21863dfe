//! The sink: the database consumers write into, counters keyed by number, with a table of the
//! message ids already applied kept beside the data and updated in the same step, so that an
//! update carrying an id is applied at most once however often it is delivered or resent.

use super::msg::{BrokerMsg, MessageId};
use detsim_core::{Ctx, Node, NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Settings of the sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinkParams {
    /// Message ids remembered (oldest forgotten first); bounded like everything else. A message
    /// redelivered after its id was forgotten would be applied again, so this must exceed the
    /// messages that can be in the system at once.
    pub dedup_capacity: usize,
}

impl Default for SinkParams {
    fn default() -> Self {
        SinkParams { dedup_capacity: 1_000_000 }
    }
}

const COUNTER_PREFIX: &str = "sink/counter/";
const APPLIED_PREFIX: &str = "sink/applied/";

/// The sink node.
#[derive(Clone, Debug)]
pub struct Sink {
    params: SinkParams,
    counters: BTreeMap<u64, i64>,
    applied: BTreeSet<MessageId>,
    /// Updates applied (duplicates of naive consumers included).
    pub applied_updates: u64,
    /// Updates recognised as already applied and not applied again.
    pub duplicates_ignored: u64,
}

impl Sink {
    /// The sink, rebuilt from `storage` (empty on first start).
    pub fn new(params: SinkParams, storage: &Storage) -> Self {
        let mut counters = BTreeMap::new();
        for name in storage.keys_with_prefix(COUNTER_PREFIX) {
            let key: u64 = name[COUNTER_PREFIX.len()..].parse().expect("counter keys are numbers");
            counters.insert(key, storage.get(name).expect("listed key exists"));
        }
        let applied = storage
            .keys_with_prefix(APPLIED_PREFIX)
            .map(|name| name[APPLIED_PREFIX.len()..].parse().expect("applied keys are ids"))
            .collect();
        Sink { params, counters, applied, applied_updates: 0, duplicates_ignored: 0 }
    }

    pub fn value(&self, key: u64) -> i64 {
        self.counters.get(&key).copied().unwrap_or(0)
    }
}

impl Node for Sink {
    type Msg = BrokerMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, from: NodeId, msg: BrokerMsg) {
        match msg {
            BrokerMsg::Apply { request, payload, dedup } => {
                if let Some(id) = dedup {
                    if self.applied.contains(&id) {
                        // Already applied: confirm again (the first confirmation may be what was lost).
                        self.duplicates_ignored += 1;
                        ctx.send(from, BrokerMsg::Applied { request });
                        return;
                    }
                    if self.applied.len() >= self.params.dedup_capacity {
                        let oldest = self.applied.pop_first().expect("a full table is not empty");
                        ctx.storage().remove(&format!("{APPLIED_PREFIX}{oldest:020}"));
                    }
                    self.applied.insert(id);
                    ctx.storage().put(&format!("{APPLIED_PREFIX}{id:020}"), &true);
                }
                let value = self.value(payload.key) + payload.delta;
                self.counters.insert(payload.key, value);
                // Written in the same handler as the dedup entry: a crash keeps both or neither.
                ctx.storage().put(&format!("{COUNTER_PREFIX}{}", payload.key), &value);
                self.applied_updates += 1;
                ctx.send(from, BrokerMsg::Applied { request });
            }
            BrokerMsg::Read { request, key } => {
                ctx.send(from, BrokerMsg::ReadReply { request, value: self.value(key) });
            }
            _ => {} // not for the sink
        }
    }
}
