//! Request forwarding shared by every proxy of the family (front tier, cache, load balancer,
//! gateway): a proxy gives each backend call its own id, remembers whom to answer, and bounds the
//! wait with a timeout. A timed-out call's outcome is *unknown* (the backend may have applied it),
//! which the proxy must pass on as such rather than as a failure.

use super::msg::{timer_tag, CsMsg, IdempotencyKey, KvOp};
use detsim_core::{Ctx, NodeId, TimerId};
use std::collections::BTreeMap;
use std::time::Duration;

/// A backend call in flight.
#[derive(Clone, Debug)]
pub struct Pending<X> {
    pub client: NodeId,
    pub client_id: u64,
    pub backend: NodeId,
    pub op: KvOp,
    timer: TimerId,
    /// What the proxy needs to finish the call (a cache's key, a gateway's dependency...).
    pub extra: X,
}

/// Calls in flight, by proxy-assigned id.
#[derive(Clone, Debug)]
pub struct Forwarder<X> {
    timeout: Duration,
    next_id: u64,
    pending: BTreeMap<u64, Pending<X>>,
    /// Bound on calls in flight (a proxy never grows without limit).
    limit: usize,
}

impl<X> Forwarder<X> {
    pub fn new(timeout_ns: u64) -> Self {
        Forwarder { timeout: Duration::from_nanos(timeout_ns), next_id: 0, pending: BTreeMap::new(), limit: 1_000_000 }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Sends `op` to `backend` on behalf of `client`'s request `client_id`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        ctx: &mut Ctx<'_, CsMsg>,
        client: NodeId,
        client_id: u64,
        backend: NodeId,
        op: KvOp,
        idempotency_key: Option<IdempotencyKey>,
        extra: X,
    ) {
        assert!(self.pending.len() < self.limit, "proxy calls in flight stay bounded");
        let id = self.next_id;
        self.next_id += 1;
        let timer = ctx.set_timer(self.timeout, timer_tag::make(timer_tag::BACKEND_TIMEOUT, id));
        ctx.send(backend, CsMsg::Request { id, op: op.clone(), idempotency_key });
        self.pending.insert(id, Pending { client, client_id, backend, op, timer, extra });
    }

    /// The call `id` answered by `from`; `None` for a late or duplicate reply.
    pub fn answered(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, id: u64) -> Option<Pending<X>> {
        if self.pending.get(&id)?.backend != from {
            return None;
        }
        let pending = self.pending.remove(&id).expect("just found");
        ctx.cancel_timer(pending.timer);
        Some(pending)
    }

    /// The call whose timeout timer (id from the tag) fired, if still in flight.
    pub fn timed_out(&mut self, id: u64) -> Option<Pending<X>> {
        self.pending.remove(&id)
    }
}
