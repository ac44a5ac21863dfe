//! A load balancer in front of a pool of (possibly heterogeneous) servers, with three strategies:
//!
//! - **round robin**: blind to load; a slow server gets its full share and its queue grows, which
//!   is what makes the tail latency of round robin the worst when servers differ;
//! - **least outstanding requests**: the backend with the fewest calls in flight *from this
//!   balancer* (ties broken at random, so that equal servers share evenly);
//! - **power of two choices**: two distinct backends drawn at random, the less loaded one wins.
//!   Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (IEEE TPDS 12(10),
//!   2001): the maximum load drops from Θ(log n / log log n) to Θ(log log n) with just one more
//!   sample, and it avoids the herding of every balancer picking the same "least loaded" server
//!   from stale information.

use super::msg::{timer_tag, CsMsg, Outcome};
use super::proxy::Forwarder;
use detsim_core::{Ctx, Node, NodeId, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// How the balancer picks a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LbStrategy {
    RoundRobin,
    LeastOutstanding,
    PowerOfTwoChoices,
}

/// The load balancer node.
#[derive(Clone, Debug)]
pub struct LoadBalancer {
    strategy: LbStrategy,
    backends: Vec<NodeId>,
    /// Calls in flight per backend (index into `backends`).
    outstanding: Vec<usize>,
    next_round_robin: usize,
    forwarder: Forwarder<usize>,
    /// Requests sent to each backend so far.
    pub sent: Vec<u64>,
}

impl LoadBalancer {
    pub fn new(strategy: LbStrategy, backends: Vec<NodeId>, backend_timeout_ns: u64) -> Self {
        assert!(!backends.is_empty(), "a balancer needs backends");
        let n = backends.len();
        LoadBalancer {
            strategy,
            backends,
            outstanding: vec![0; n],
            next_round_robin: 0,
            forwarder: Forwarder::new(backend_timeout_ns),
            sent: vec![0; n],
        }
    }

    fn choose(&mut self, ctx: &mut Ctx<'_, CsMsg>) -> usize {
        let n = self.backends.len();
        match self.strategy {
            LbStrategy::RoundRobin => {
                let i = self.next_round_robin;
                self.next_round_robin = (i + 1) % n;
                i
            }
            LbStrategy::LeastOutstanding => {
                let least = *self.outstanding.iter().min().expect("backends exist");
                let ties: Vec<usize> = (0..n).filter(|&i| self.outstanding[i] == least).collect();
                ties[ctx.rng().random_range(0..ties.len())]
            }
            LbStrategy::PowerOfTwoChoices => {
                if n == 1 {
                    return 0;
                }
                let a = ctx.rng().random_range(0..n);
                // A second, distinct sample: draw from n-1 and skip over `a`.
                let mut b = ctx.rng().random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                if self.outstanding[b] < self.outstanding[a] {
                    b
                } else {
                    a
                }
            }
        }
    }
}

impl Node for LoadBalancer {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        match msg {
            CsMsg::Request { id, op, idempotency_key } => {
                let index = self.choose(ctx);
                self.outstanding[index] += 1;
                self.sent[index] += 1;
                let backend = self.backends[index];
                self.forwarder.forward(ctx, from, id, backend, op, idempotency_key, index);
            }
            CsMsg::Reply { id, outcome } => {
                if let Some(call) = self.forwarder.answered(ctx, from, id) {
                    self.outstanding[call.extra] -= 1;
                    ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind == timer_tag::BACKEND_TIMEOUT {
            if let Some(call) = self.forwarder.timed_out(id) {
                self.outstanding[call.extra] -= 1;
                let outcome = Outcome::Unknown("backend-timeout".into());
                ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
            }
        }
    }
}
