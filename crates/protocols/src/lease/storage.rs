//! The storage node: one register, read and written by lease holders. With fencing (Kleppmann,
//! "How to do distributed locking", 2016; Chubby's sequencers) it remembers the largest token it
//! has seen and refuses any request, read or write, that carries a smaller one: once a newer lease
//! holder has touched the register, an older holder that still believes in its lease can no longer
//! change it. Fencing reads as well as writes is what makes a read-modify-write safe: a newer
//! holder's read shuts the older holder's pending write out.
//!
//! Deliberate bug `bug_no_fencing`: tokens are ignored, so a client whose lease expired without
//! its knowing (a slow clock, a delayed message) overwrites the newer holder's update.

use super::msg::{LeaseMsg, Token};
use detsim_core::{Ctx, Node, NodeId, Storage, TimerId};
use serde::{Deserialize, Serialize};

/// Settings of the storage node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageParams {
    /// Deliberate bug: ignore fencing tokens.
    pub bug_no_fencing: bool,
}

const VALUE_KEY: &str = "storage/value";
const HIGHEST_KEY: &str = "storage/highest_token";

/// The storage node.
#[derive(Clone, Debug)]
pub struct FencedStorage {
    params: StorageParams,
    value: i64,
    highest: Token,
    /// Requests refused for carrying a stale token.
    pub fenced_off: u64,
    pub writes: u64,
}

impl FencedStorage {
    pub fn new(params: StorageParams, storage: &Storage) -> Self {
        FencedStorage {
            params,
            value: storage.get(VALUE_KEY).unwrap_or(0),
            highest: storage.get(HIGHEST_KEY).unwrap_or(0),
            fenced_off: 0,
            writes: 0,
        }
    }

    pub fn value(&self) -> i64 {
        self.value
    }

    /// Admits a request carrying `token` (raising the high-water mark), or refuses a stale one.
    fn admit(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, from: NodeId, token: Token, what: &str) -> bool {
        if self.params.bug_no_fencing {
            return true;
        }
        if token < self.highest {
            self.fenced_off += 1;
            ctx.annotate(format!(
                "fenced off {what} from {from} with token {token}: token {} seen already",
                self.highest
            ));
            return false;
        }
        if token > self.highest {
            self.highest = token;
            ctx.storage().put(HIGHEST_KEY, &token);
        }
        true
    }
}

impl Node for FencedStorage {
    type Msg = LeaseMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, from: NodeId, msg: LeaseMsg) {
        match msg {
            LeaseMsg::Read { request, token } => {
                let value = self.admit(ctx, from, token, "a read").then_some(self.value);
                ctx.send(from, LeaseMsg::ReadReply { request, value });
            }
            LeaseMsg::Write { request, token, value } => {
                let accepted = self.admit(ctx, from, token, "a write");
                if accepted {
                    self.value = value;
                    self.writes += 1;
                    ctx.storage().put(VALUE_KEY, &value);
                }
                ctx.send(from, LeaseMsg::WriteReply { request, accepted });
            }
            _ => {} // not for the storage node
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, LeaseMsg>, _timer: TimerId, _tag: u64) {}
}
