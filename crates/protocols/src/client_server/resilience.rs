//! Resilience patterns at an API gateway that calls downstream dependencies, after Michael Nygard,
//! *Release It!* (2nd ed., 2018), ch. 5 "Stability Patterns":
//!
//! - **Timeouts** on every dependency call: a hung dependency must not hold the caller forever.
//! - **Circuit breaker** per dependency (Nygard; Martin Fowler, "CircuitBreaker", 2014): *closed*
//!   while calls succeed; after `failure_threshold` consecutive failures it *opens* and fails calls
//!   at once, without touching the dependency, for `open_ns`; then *half-open*: up to
//!   `half_open_probes` trial calls go through; if they all succeed it closes, one failure reopens it.
//! - **Bulkheads**: the gateway has `pool_size` call slots (its worker threads). Without bulkheads one
//!   hung dependency soaks up every slot and calls to *healthy* dependencies are refused too; with
//!   bulkheads each dependency gets its own share, so the failure stays in its compartment.
//!
//! The [`Dependency`] node can be told to hang (accept requests and never answer) during a window,
//! the nastiest failure for a caller: it costs a whole timeout per call.

use super::msg::{timer_tag, CsMsg, KvOp, Outcome};
use super::proxy::Forwarder;
use super::service::{ServiceParams, ServiceQueue};
use detsim_core::{Ctx, LocalTime, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Circuit breaker settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerParams {
    pub enabled: bool,
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before probing.
    pub open_ns: u64,
    /// Trial calls in the half-open state; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerParams {
    fn default() -> Self {
        BreakerParams { enabled: true, failure_threshold: 5, open_ns: 500_000_000, half_open_probes: 2 }
    }
}

/// The state of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BreakerState {
    Closed { consecutive_failures: u32 },
    Open { until: LocalTime },
    HalfOpen { probes_in_flight: u32, successes: u32 },
}

impl BreakerState {
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half-open",
        }
    }
}

/// A circuit breaker for one dependency.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    params: BreakerParams,
    state: BreakerState,
    /// Every state change as (local time, new state name), bounded.
    pub transitions: Vec<(LocalTime, &'static str)>,
    /// Calls refused while open.
    pub short_circuited: u64,
}

const MAX_TRANSITIONS: usize = 100_000;

impl CircuitBreaker {
    pub fn new(params: BreakerParams) -> Self {
        assert!(params.failure_threshold > 0 && params.half_open_probes > 0, "validated breaker parameters");
        CircuitBreaker {
            params,
            state: BreakerState::Closed { consecutive_failures: 0 },
            transitions: Vec::new(),
            short_circuited: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn set(&mut self, now: LocalTime, state: BreakerState) {
        if state.name() != self.state.name() && self.transitions.len() < MAX_TRANSITIONS {
            self.transitions.push((now, state.name()));
        }
        self.state = state;
    }

    /// Whether a call may go to the dependency now (a half-open breaker counts it as a probe).
    pub fn allow(&mut self, now: LocalTime) -> bool {
        if let BreakerState::Open { until } = self.state {
            if now < until {
                self.short_circuited += 1;
                return false;
            }
            self.set(now, BreakerState::HalfOpen { probes_in_flight: 0, successes: 0 });
        }
        match &mut self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::HalfOpen { probes_in_flight, successes } => {
                if *probes_in_flight + *successes < self.params.half_open_probes {
                    *probes_in_flight += 1;
                    true
                } else {
                    self.short_circuited += 1;
                    false
                }
            }
            BreakerState::Open { .. } => unreachable!("handled above"),
        }
    }

    pub fn on_success(&mut self, now: LocalTime) {
        match self.state {
            BreakerState::Closed { .. } => self.state = BreakerState::Closed { consecutive_failures: 0 },
            BreakerState::HalfOpen { probes_in_flight, successes } => {
                let successes = successes + 1;
                if successes >= self.params.half_open_probes {
                    self.set(now, BreakerState::Closed { consecutive_failures: 0 });
                } else {
                    let probes_in_flight = probes_in_flight.saturating_sub(1);
                    self.state = BreakerState::HalfOpen { probes_in_flight, successes };
                }
            }
            // A call that started before the breaker opened: too late to matter.
            BreakerState::Open { .. } => {}
        }
    }

    pub fn on_failure(&mut self, now: LocalTime) {
        let open = BreakerState::Open { until: now + Duration::from_nanos(self.params.open_ns) };
        match self.state {
            BreakerState::Closed { consecutive_failures } => {
                let failures = consecutive_failures + 1;
                if failures >= self.params.failure_threshold {
                    self.set(now, open);
                } else {
                    self.state = BreakerState::Closed { consecutive_failures: failures };
                }
            }
            BreakerState::HalfOpen { .. } => self.set(now, open),
            BreakerState::Open { .. } => {}
        }
    }
}

/// Settings of the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayParams {
    /// Timeout of one dependency call.
    pub call_timeout_ns: u64,
    /// Calls in flight at once, over all dependencies (the gateway's worker pool).
    pub pool_size: usize,
    /// Split the pool into equal per-dependency compartments.
    pub bulkheads: bool,
    pub breaker: BreakerParams,
}

impl Default for GatewayParams {
    fn default() -> Self {
        GatewayParams { call_timeout_ns: 300_000_000, pool_size: 8, bulkheads: true, breaker: BreakerParams::default() }
    }
}

impl GatewayParams {
    pub fn validate(&self, dependencies: usize) -> Result<(), String> {
        if self.pool_size == 0 {
            return Err("gateway.pool_size must be at least 1".into());
        }
        if self.bulkheads && self.pool_size < dependencies {
            return Err(format!(
                "gateway.pool_size {} gives a bulkhead of zero to some of {dependencies} dependencies",
                self.pool_size
            ));
        }
        if self.breaker.failure_threshold == 0 || self.breaker.half_open_probes == 0 {
            return Err("breaker.failure_threshold and breaker.half_open_probes must be at least 1".into());
        }
        Ok(())
    }
}

/// The API gateway node.
#[derive(Clone, Debug)]
pub struct Gateway {
    params: GatewayParams,
    dependencies: Vec<NodeId>,
    pub breakers: Vec<CircuitBreaker>,
    in_use: Vec<usize>,
    forwarder: Forwarder<usize>,
    /// Calls refused for want of a slot, per dependency.
    pub refused_no_slot: Vec<u64>,
}

impl Gateway {
    pub fn new(params: GatewayParams, dependencies: Vec<NodeId>) -> Self {
        let n = dependencies.len();
        Gateway {
            breakers: (0..n).map(|_| CircuitBreaker::new(params.breaker.clone())).collect(),
            forwarder: Forwarder::new(params.call_timeout_ns),
            params,
            dependencies,
            in_use: vec![0; n],
            refused_no_slot: vec![0; n],
        }
    }

    fn slot_free(&self, dependency: usize) -> bool {
        if self.params.bulkheads {
            self.in_use[dependency] < self.params.pool_size / self.dependencies.len()
        } else {
            self.in_use.iter().sum::<usize>() < self.params.pool_size
        }
    }

    fn reply(ctx: &mut Ctx<'_, CsMsg>, to: NodeId, id: u64, outcome: Outcome) {
        ctx.send(to, CsMsg::Reply { id, outcome });
    }
}

impl Node for Gateway {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        match msg {
            CsMsg::Request { id, op, idempotency_key } => {
                let KvOp::Call { dependency } = op else {
                    return Self::reply(ctx, from, id, Outcome::NotApplied("not-a-call".into()));
                };
                let d = dependency as usize;
                if d >= self.dependencies.len() {
                    return Self::reply(ctx, from, id, Outcome::NotApplied("no-such-dependency".into()));
                }
                if !self.slot_free(d) {
                    self.refused_no_slot[d] += 1;
                    let reason = if self.params.bulkheads { "bulkhead-full" } else { "pool-exhausted" };
                    return Self::reply(ctx, from, id, Outcome::NotApplied(reason.into()));
                }
                if self.params.breaker.enabled && !self.breakers[d].allow(ctx.now()) {
                    return Self::reply(ctx, from, id, Outcome::NotApplied("circuit-open".into()));
                }
                self.in_use[d] += 1;
                self.forwarder.forward(ctx, from, id, self.dependencies[d], op, idempotency_key, d);
            }
            CsMsg::Reply { id, outcome } => {
                if let Some(call) = self.forwarder.answered(ctx, from, id) {
                    let d = call.extra;
                    self.in_use[d] -= 1;
                    if self.params.breaker.enabled {
                        let before = self.breakers[d].state().name();
                        match outcome {
                            Outcome::Value(_) => self.breakers[d].on_success(ctx.now()),
                            _ => self.breakers[d].on_failure(ctx.now()),
                        }
                        note_transition(ctx, d, before, self.breakers[d].state().name());
                    }
                    Self::reply(ctx, call.client, call.client_id, outcome);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind == timer_tag::BACKEND_TIMEOUT {
            if let Some(call) = self.forwarder.timed_out(id) {
                let d = call.extra;
                self.in_use[d] -= 1;
                if self.params.breaker.enabled {
                    let before = self.breakers[d].state().name();
                    self.breakers[d].on_failure(ctx.now());
                    note_transition(ctx, d, before, self.breakers[d].state().name());
                }
                // A call has no effect, so a timed-out call certainly did nothing the client cares about.
                Self::reply(ctx, call.client, call.client_id, Outcome::NotApplied("dependency-timeout".into()));
            }
        }
    }
}

fn note_transition(ctx: &mut Ctx<'_, CsMsg>, dependency: usize, before: &str, after: &str) {
    if before != after {
        ctx.annotate(format!("breaker of dependency {dependency}: {before} -> {after}"));
    }
}

/// Settings of a dependency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DependencyParams {
    pub service: ServiceParams,
}

impl Default for DependencyParams {
    fn default() -> Self {
        DependencyParams {
            service: ServiceParams { mean_service_ns: 1_000_000, workers: 16, ..ServiceParams::default() },
        }
    }
}

/// A downstream service the gateway calls; it hangs (never answers) inside `hang` (local times).
#[derive(Clone, Debug)]
pub struct Dependency {
    queue: ServiceQueue<(NodeId, u64)>,
    hang: Option<(LocalTime, LocalTime)>,
    pub served: u64,
    pub swallowed: u64,
}

impl Dependency {
    pub fn new(params: &DependencyParams, hang: Option<(u64, u64)>) -> Self {
        Dependency {
            queue: ServiceQueue::new(params.service.clone(), 1.0),
            hang: hang.map(|(from, until)| (LocalTime(from as i64), LocalTime(until as i64))),
            served: 0,
            swallowed: 0,
        }
    }

    fn hanging(&self, now: LocalTime) -> bool {
        self.hang.is_some_and(|(from, until)| from <= now && now < until)
    }

    fn answer(&mut self, ctx: &mut Ctx<'_, CsMsg>, to: NodeId, id: u64) {
        if self.hanging(ctx.now()) {
            self.swallowed += 1;
            return;
        }
        self.served += 1;
        ctx.send(to, CsMsg::Reply { id, outcome: Outcome::Value(None) });
    }
}

impl Node for Dependency {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        let CsMsg::Request { id, .. } = msg else {
            return;
        };
        if self.queue.is_instant() {
            self.answer(ctx, from, id);
        } else if let Err((to, id)) = self.queue.offer(ctx, (from, id)) {
            ctx.send(to, CsMsg::Reply { id, outcome: Outcome::NotApplied("overloaded".into()) });
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind == timer_tag::SERVICE {
            if let Some((to, request)) = self.queue.complete(ctx, id) {
                self.answer(ctx, to, request);
            }
        }
    }
}
