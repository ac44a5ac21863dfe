//! Resilience patterns at an API gateway that calls downstream dependencies, after Michael Nygard,
//! *Release It!* (2nd ed., 2018), ch. 5 "Stability Patterns":
//!
//! - **Timeouts** on every dependency call: a hung dependency must not hold the caller forever. The
//!   gateway's timeout must be shorter than its caller's (the builder refuses anything else): a
//!   caller that gives up first leaves the gateway holding a worker for a call nobody waits for.
//! - **Circuit breaker** per dependency (Nygard; Martin Fowler, "CircuitBreaker", 2014): *closed*
//!   while calls succeed; after `failure_threshold` consecutive failures it *opens* and fails calls
//!   at once, without touching the dependency, for `open_ns`; then *half-open*: trial calls go
//!   through, at most `half_open_probes` at a time; after `half_open_probes` successes it closes, and
//!   one failure reopens it. Bounding the probes *in flight* rather than in total keeps one lost
//!   probe from stalling recovery: the other probes go on succeeding and close the breaker before
//!   the lost one times out.
//!   Every state change starts a new *epoch*, and a call's outcome counts only in the epoch that
//!   admitted it: a call sent while closed that times out after the breaker went half-open is not a
//!   failed probe (it would reopen a breaker whose dependency has recovered), and a late success of
//!   such a call is not a successful probe (it would close a breaker whose dependency is still down).
//! - **Bulkheads** (Nygard's "Bulkheads"; Hystrix's semaphore isolation): each dependency gets its own
//!   compartment of `pool_size / dependencies` workers, and a call that finds its compartment full is
//!   refused at once. An open breaker refuses a call before it reaches the compartment.
//!
//! Without bulkheads the gateway is a plain server worker pool, as a thread-per-request server is: a
//! call that finds every worker busy waits in one shared FIFO queue (bounded by `queue_limit`); the
//! worker that takes it consults the breaker (open: the call fails at once and the worker moves on)
//! and otherwise sends it and waits, up to `call_timeout_ns` from the moment it sent it. Once a hung
//! dependency holds every worker, calls to *healthy* dependencies wait in the queue behind calls to
//! the hung one until their clients give up: the cascading failure of the book, where one dead
//! integration point takes the whole service down.
//!
//! The [`Dependency`] node can be told to hang (accept requests and never answer) during a window,
//! the nastiest failure for a caller: it costs a whole timeout per call.

use super::msg::{timer_tag, CsMsg, KvOp, Outcome};
use super::service::{ServiceParams, ServiceQueue};
use detsim_core::{Ctx, LocalTime, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
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
    /// Half-open: trial calls in flight at once, and successes that close the breaker.
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

/// What a breaker hands out with each call it lets through: the epoch that admitted it, which the
/// call's outcome must name to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permit {
    epoch: u64,
}

/// A circuit breaker for one dependency.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    params: BreakerParams,
    state: BreakerState,
    /// Bumped at every state change; outcomes of calls admitted in an earlier epoch are ignored.
    epoch: u64,
    /// Every state change as (local time, new state name), bounded.
    pub transitions: Vec<(LocalTime, &'static str)>,
    /// Calls refused while open (or half-open with every probe out).
    pub short_circuited: u64,
    /// Outcomes ignored because the call was admitted in an earlier epoch.
    pub stale_outcomes: u64,
}

const MAX_TRANSITIONS: usize = 100_000;

impl CircuitBreaker {
    pub fn new(params: BreakerParams) -> Self {
        assert!(params.failure_threshold > 0, "validated: failure_threshold >= 1");
        assert!(params.half_open_probes > 0, "validated: half_open_probes >= 1");
        CircuitBreaker {
            params,
            state: BreakerState::Closed { consecutive_failures: 0 },
            epoch: 0,
            transitions: Vec::new(),
            short_circuited: 0,
            stale_outcomes: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn set(&mut self, now: LocalTime, state: BreakerState) {
        assert_ne!(state.name(), self.state.name(), "a transition changes the state");
        if self.transitions.len() < MAX_TRANSITIONS {
            self.transitions.push((now, state.name()));
        }
        self.epoch += 1;
        self.state = state;
    }

    /// Moves an open breaker whose wait is over to half-open.
    fn poll(&mut self, now: LocalTime) {
        if let BreakerState::Open { until } = self.state {
            if now >= until {
                self.set(now, BreakerState::HalfOpen { probes_in_flight: 0, successes: 0 });
            }
        }
    }

    /// Whether [`CircuitBreaker::admit`] would let a call through now (it counts a refusal).
    pub fn would_admit(&mut self, now: LocalTime) -> bool {
        self.poll(now);
        let admits = match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { .. } => false,
            BreakerState::HalfOpen { probes_in_flight, .. } => probes_in_flight < self.params.half_open_probes,
        };
        if !admits {
            self.short_circuited += 1;
        }
        admits
    }

    /// Lets a call through (after [`CircuitBreaker::would_admit`] said yes); a half-open breaker
    /// counts it as a probe.
    pub fn admit(&mut self, now: LocalTime) -> Permit {
        self.poll(now);
        match &mut self.state {
            BreakerState::Closed { .. } => {}
            BreakerState::HalfOpen { probes_in_flight, .. } => {
                assert!(*probes_in_flight < self.params.half_open_probes, "checked by would_admit");
                *probes_in_flight += 1;
            }
            BreakerState::Open { .. } => panic!("admit on an open breaker: would_admit said no"),
        }
        Permit { epoch: self.epoch }
    }

    fn current(&mut self, permit: Permit) -> bool {
        assert!(permit.epoch <= self.epoch, "permits come from this breaker");
        let current = permit.epoch == self.epoch;
        if !current {
            self.stale_outcomes += 1;
        }
        current
    }

    pub fn on_success(&mut self, now: LocalTime, permit: Permit) {
        if !self.current(permit) {
            return;
        }
        match self.state {
            BreakerState::Closed { .. } => self.state = BreakerState::Closed { consecutive_failures: 0 },
            BreakerState::HalfOpen { probes_in_flight, successes } => {
                assert!(probes_in_flight > 0, "a current half-open outcome is a probe's");
                let successes = successes + 1;
                if successes >= self.params.half_open_probes {
                    self.set(now, BreakerState::Closed { consecutive_failures: 0 });
                } else {
                    self.state = BreakerState::HalfOpen { probes_in_flight: probes_in_flight - 1, successes };
                }
            }
            BreakerState::Open { .. } => unreachable!("an open breaker admits nothing, so no permit is current"),
        }
    }

    pub fn on_failure(&mut self, now: LocalTime, permit: Permit) {
        if !self.current(permit) {
            return;
        }
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
            BreakerState::Open { .. } => unreachable!("an open breaker admits nothing, so no permit is current"),
        }
    }
}

/// Settings of the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayParams {
    /// Timeout of one dependency call, from the moment a worker sends it.
    pub call_timeout_ns: u64,
    /// Workers, over all dependencies: calls in flight at once.
    pub pool_size: usize,
    /// Split the pool into equal per-dependency compartments that refuse calls when full.
    pub bulkheads: bool,
    /// Without bulkheads: calls waiting for a worker beyond which new ones are refused.
    pub queue_limit: usize,
    pub breaker: BreakerParams,
}

impl Default for GatewayParams {
    fn default() -> Self {
        GatewayParams {
            call_timeout_ns: 300_000_000,
            pool_size: 8,
            bulkheads: true,
            queue_limit: 1_000,
            breaker: BreakerParams::default(),
        }
    }
}

impl GatewayParams {
    pub fn validate(&self, dependencies: usize) -> Result<(), String> {
        if self.pool_size == 0 {
            return Err("gateway.pool_size must be at least 1".into());
        }
        if self.call_timeout_ns == 0 {
            return Err("gateway.call_timeout_ns must be positive".into());
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

/// A client call waiting for a worker (shared pool only).
#[derive(Clone, Debug)]
struct Waiting {
    client: NodeId,
    client_id: u64,
    dependency: usize,
}

/// A call a worker has sent to its dependency.
#[derive(Clone, Debug)]
struct InFlight {
    client: NodeId,
    client_id: u64,
    dependency: usize,
    /// `None` when the breaker is disabled.
    permit: Option<Permit>,
    timer: TimerId,
}

/// The API gateway node.
#[derive(Clone, Debug)]
pub struct Gateway {
    params: GatewayParams,
    dependencies: Vec<NodeId>,
    pub breakers: Vec<CircuitBreaker>,
    /// Workers busy per dependency.
    in_use: Vec<usize>,
    /// Calls out at dependencies, by gateway-assigned id (the id of the request to the dependency).
    in_flight: BTreeMap<u64, InFlight>,
    /// Without bulkheads: calls waiting for a worker, oldest first (at most `queue_limit`).
    queue: VecDeque<Waiting>,
    next_call: u64,
    /// Calls refused for want of a worker (full compartment or full queue), per dependency.
    pub refused_no_slot: Vec<u64>,
    /// Most calls that waited in the queue at once.
    pub max_queued: usize,
}

impl Gateway {
    pub fn new(params: GatewayParams, dependencies: Vec<NodeId>) -> Self {
        let n = dependencies.len();
        Gateway {
            breakers: (0..n).map(|_| CircuitBreaker::new(params.breaker.clone())).collect(),
            params,
            dependencies,
            in_use: vec![0; n],
            in_flight: BTreeMap::new(),
            queue: VecDeque::new(),
            next_call: 0,
            refused_no_slot: vec![0; n],
            max_queued: 0,
        }
    }

    /// Calls waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn busy(&self) -> usize {
        self.in_use.iter().sum()
    }

    fn reply(ctx: &mut Ctx<'_, CsMsg>, to: NodeId, id: u64, outcome: Outcome) {
        ctx.send(to, CsMsg::Reply { id, outcome });
    }

    /// Asks dependency `d`'s breaker whether a call may go out; annotates a state change.
    fn breaker_admits(&mut self, ctx: &mut Ctx<'_, CsMsg>, d: usize) -> bool {
        if !self.params.breaker.enabled {
            return true;
        }
        let before = self.breakers[d].state().name();
        let admits = self.breakers[d].would_admit(ctx.now());
        note_transition(ctx, d, before, self.breakers[d].state().name());
        admits
    }

    /// A worker (already counted in `in_use`) sends the call to its dependency.
    fn send_call(&mut self, ctx: &mut Ctx<'_, CsMsg>, client: NodeId, client_id: u64, d: usize) {
        assert!(self.busy() <= self.params.pool_size, "never more calls out than workers");
        let permit = self.params.breaker.enabled.then(|| self.breakers[d].admit(ctx.now()));
        let id = self.next_call;
        self.next_call += 1;
        let timeout = Duration::from_nanos(self.params.call_timeout_ns);
        let timer = ctx.set_timer(timeout, timer_tag::make(timer_tag::BACKEND_TIMEOUT, id));
        let op = KvOp::Call { dependency: d as u32 };
        ctx.send(self.dependencies[d], CsMsg::Request { id, op, idempotency_key: None });
        self.in_flight.insert(id, InFlight { client, client_id, dependency: d, permit, timer });
    }

    /// Shared pool: a worker takes `call`; it consults the breaker (when the worker runs the call,
    /// as code wrapping a call in a breaker does) and either sends it or fails it at once.
    fn run_on_worker(&mut self, ctx: &mut Ctx<'_, CsMsg>, call: Waiting) -> bool {
        if !self.breaker_admits(ctx, call.dependency) {
            Self::reply(ctx, call.client, call.client_id, Outcome::NotApplied("circuit-open".into()));
            return false; // the worker is free again at once
        }
        self.in_use[call.dependency] += 1;
        self.send_call(ctx, call.client, call.client_id, call.dependency);
        true
    }

    /// A worker of dependency `d` came free: in the shared pool it takes the oldest waiting call
    /// (and the next, as long as calls fail at once on an open breaker).
    fn release(&mut self, ctx: &mut Ctx<'_, CsMsg>, d: usize) {
        assert!(self.in_use[d] > 0, "releasing a busy worker");
        self.in_use[d] -= 1;
        if self.params.bulkheads {
            return;
        }
        while self.busy() < self.params.pool_size {
            let Some(next) = self.queue.pop_front() else { break };
            self.run_on_worker(ctx, next);
        }
    }

    fn record(&mut self, ctx: &mut Ctx<'_, CsMsg>, d: usize, permit: Option<Permit>, success: bool) {
        let Some(permit) = permit else { return };
        let before = self.breakers[d].state().name();
        if success {
            self.breakers[d].on_success(ctx.now(), permit);
        } else {
            self.breakers[d].on_failure(ctx.now(), permit);
        }
        note_transition(ctx, d, before, self.breakers[d].state().name());
    }

    fn on_call(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, id: u64, d: usize) {
        if self.params.bulkheads {
            // Isolation first: an open breaker fails the call without touching the compartment.
            if !self.breaker_admits(ctx, d) {
                return Self::reply(ctx, from, id, Outcome::NotApplied("circuit-open".into()));
            }
            if self.in_use[d] >= self.params.pool_size / self.dependencies.len() {
                self.refused_no_slot[d] += 1;
                return Self::reply(ctx, from, id, Outcome::NotApplied("bulkhead-full".into()));
            }
            self.in_use[d] += 1;
            self.send_call(ctx, from, id, d);
            return;
        }
        let call = Waiting { client: from, client_id: id, dependency: d };
        if self.busy() < self.params.pool_size {
            assert!(self.queue.is_empty(), "a free worker leaves no call waiting");
            self.run_on_worker(ctx, call);
        } else if self.queue.len() < self.params.queue_limit {
            self.queue.push_back(call);
            self.max_queued = self.max_queued.max(self.queue.len());
        } else {
            self.refused_no_slot[d] += 1;
            Self::reply(ctx, from, id, Outcome::NotApplied("queue-full".into()));
        }
    }
}

impl Node for Gateway {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        match msg {
            CsMsg::Request { id, op, .. } => {
                let KvOp::Call { dependency } = op else {
                    return Self::reply(ctx, from, id, Outcome::NotApplied("not-a-call".into()));
                };
                let d = dependency as usize;
                if d >= self.dependencies.len() {
                    return Self::reply(ctx, from, id, Outcome::NotApplied("no-such-dependency".into()));
                }
                self.on_call(ctx, from, id, d);
            }
            CsMsg::Reply { id, outcome } => {
                let Some(call) = self.in_flight.get(&id) else {
                    return; // late (timed out already) or duplicated
                };
                if self.dependencies[call.dependency] != from {
                    return;
                }
                let call = self.in_flight.remove(&id).expect("just found");
                ctx.cancel_timer(call.timer);
                self.record(ctx, call.dependency, call.permit, matches!(outcome, Outcome::Value(_)));
                Self::reply(ctx, call.client, call.client_id, outcome);
                self.release(ctx, call.dependency);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind != timer_tag::BACKEND_TIMEOUT {
            return;
        }
        let Some(call) = self.in_flight.remove(&id) else {
            return;
        };
        self.record(ctx, call.dependency, call.permit, false);
        // A call has no effect, so a timed-out call certainly did nothing the client cares about.
        Self::reply(ctx, call.client, call.client_id, Outcome::NotApplied("dependency-timeout".into()));
        self.release(ctx, call.dependency);
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
