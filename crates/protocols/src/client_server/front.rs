//! The stateless front tier: application servers that do some work per request (service time) and
//! keep no data, forwarding every operation to one storage node. Any front can serve any request,
//! so a crashed front costs only capacity; the storage node is the single point of failure.

use super::msg::{timer_tag, CsMsg, IdempotencyKey, KvOp, Outcome};
use super::proxy::Forwarder;
use super::service::{ServiceParams, ServiceQueue};
use detsim_core::{Ctx, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};

/// Settings of a front server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontParams {
    /// The application work done per request, before the storage call.
    pub service: ServiceParams,
    /// How long the front waits for the storage node.
    pub backend_timeout_ns: u64,
}

impl Default for FrontParams {
    fn default() -> Self {
        FrontParams {
            service: ServiceParams { mean_service_ns: 2_000_000, workers: 1, ..ServiceParams::default() },
            backend_timeout_ns: 500_000_000,
        }
    }
}

#[derive(Clone, Debug)]
struct Job {
    client: NodeId,
    client_id: u64,
    op: KvOp,
    idempotency_key: Option<IdempotencyKey>,
}

/// A stateless front server.
#[derive(Clone, Debug)]
pub struct FrontServer {
    store: NodeId,
    queue: ServiceQueue<Job>,
    forwarder: Forwarder<()>,
}

impl FrontServer {
    /// `slowdown` multiplies service times (heterogeneous servers).
    pub fn new(params: &FrontParams, store: NodeId, slowdown: f64) -> Self {
        FrontServer {
            store,
            queue: ServiceQueue::new(params.service.clone(), slowdown),
            forwarder: Forwarder::new(params.backend_timeout_ns),
        }
    }

    /// Requests queued, in service, or waiting for the store.
    pub fn outstanding(&self) -> usize {
        self.queue.outstanding() + self.forwarder.in_flight()
    }

    fn call_store(&mut self, ctx: &mut Ctx<'_, CsMsg>, job: Job) {
        self.forwarder.forward(ctx, job.client, job.client_id, self.store, job.op, job.idempotency_key, ());
    }
}

impl Node for FrontServer {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        match msg {
            CsMsg::Request { id, op, idempotency_key } => {
                let job = Job { client: from, client_id: id, op, idempotency_key };
                if self.queue.is_instant() {
                    self.call_store(ctx, job);
                } else if let Err(job) = self.queue.offer(ctx, job) {
                    let outcome = Outcome::NotApplied("overloaded".into());
                    ctx.send(job.client, CsMsg::Reply { id: job.client_id, outcome });
                }
            }
            CsMsg::Reply { id, outcome } => {
                if let Some(call) = self.forwarder.answered(ctx, from, id) {
                    ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::SERVICE => {
                if let Some(job) = self.queue.complete(ctx, id) {
                    self.call_store(ctx, job);
                }
            }
            timer_tag::BACKEND_TIMEOUT => {
                if let Some(call) = self.forwarder.timed_out(id) {
                    let outcome = Outcome::Unknown("store-timeout".into());
                    ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
                }
            }
            _ => {}
        }
    }
}
