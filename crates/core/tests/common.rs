//! Test nodes shared by the core's integration tests: a chatty node that records what it receives,
//! keeps a durable counter, and talks to random peers.

#![allow(dead_code)]

use detsim_core::{Ctx, Message, Node, NodeId, Op, TimerId, Value};
use rand::RngExt;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Note {
    pub sender: u32,
    pub seq: u64,
}

impl Message for Note {
    fn kind(&self) -> &'static str {
        "Note"
    }
}

/// Sends `burst` numbered notes to random peers every `period`, records every note it receives
/// (volatile), and counts deliveries durably.
pub struct Chatter {
    pub id: NodeId,
    pub peers: u32,
    pub period: Duration,
    pub burst: u64,
    pub sent: u64,
    pub received: Vec<Note>,
    /// Rebuilt from storage on restart.
    pub durable_count: u64,
}

impl Chatter {
    pub fn new(id: NodeId, peers: u32, durable_count: u64) -> Self {
        Chatter { id, peers, period: Duration::from_millis(5), burst: 2, sent: 0, received: Vec::new(), durable_count }
    }
}

impl Node for Chatter {
    type Msg = Note;
    fn on_start(&mut self, ctx: &mut Ctx<'_, Note>) {
        ctx.set_timer(self.period, 0);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Note>, _from: NodeId, msg: Note) {
        self.received.push(msg);
        self.durable_count += 1;
        ctx.storage().put("count", &self.durable_count);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Note>, _timer: TimerId, _tag: u64) {
        for _ in 0..self.burst {
            let to = NodeId(ctx.rng().random_range(0..self.peers));
            if to != self.id {
                let seq = self.sent;
                self.sent += 1;
                ctx.send(to, Note { sender: self.id.0, seq });
            }
        }
        if self.sent.is_multiple_of(7) {
            let process = self.id.0 as u64;
            ctx.invoke(process, Op::new("write", None, Value::Int(self.sent as i64)));
            ctx.ok(process, Op::new("write", None, Value::Int(self.sent as i64)));
        }
        ctx.set_timer(self.period, 0);
    }
}
