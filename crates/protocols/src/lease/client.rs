//! A lock client: acquires the lease, then runs its critical section — read the register, work
//! for a while, write back the value plus one — and releases the lease.
//!
//! The client trusts its lease for `lease_ns - safety_margin_ns` of its *own* clock from the moment
//! the grant arrives, and checks it before reading and again right before writing (abandoning the
//! section when it has run out). That is as careful as a client can be, and still not enough: the
//! server measures the lease on its clock, so a client whose clock runs slow (or whose write is
//! delayed on the wire or at a paused storage node) goes on acting after the server has granted the
//! lease to someone else. Two clients then both believe they hold the lock; only fencing at the
//! storage keeps the older one's write out.
//!
//! History: each critical section is one operation `cas [v v+1]` on key 0, invoked once the read
//! returned `v`, `ok` when the storage accepted the write, `fail` when the section was abandoned or
//! fenced off (nothing written), `info` when the write's answer never came. The cas-register model
//! of the linearizability checker then says whether the increments were serialized: two `ok`
//! `cas [5 6]` cannot both have happened.

use super::msg::{timer_tag, LeaseMsg, Token};
use detsim_core::{Ctx, LocalTime, Node, NodeId, Op, ProcessId, Storage, TimerId, Value};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of a lock client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockClientParams {
    /// Taken off the lease: time for the grant to arrive and for clocks to disagree.
    pub safety_margin_ns: u64,
    /// Work in the critical section, between the read and the write (uniform in this range).
    pub work_min_ns: u64,
    pub work_max_ns: u64,
    /// Pause between releasing the lease and asking again.
    pub think_ns: u64,
    /// How long to wait for any answer.
    pub request_timeout_ns: u64,
}

impl Default for LockClientParams {
    fn default() -> Self {
        LockClientParams {
            safety_margin_ns: 30_000_000,
            work_min_ns: 20_000_000,
            work_max_ns: 150_000_000,
            think_ns: 20_000_000,
            request_timeout_ns: 300_000_000,
        }
    }
}

impl LockClientParams {
    pub fn validate(&self, lease_ns: u64) -> Result<(), String> {
        if self.safety_margin_ns >= lease_ns {
            return Err("client.safety_margin_ns must be shorter than the lease".into());
        }
        if self.work_min_ns > self.work_max_ns || self.request_timeout_ns == 0 {
            return Err("client.work_min_ns <= client.work_max_ns and a positive request timeout, please".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Waiting to ask (think time or a busy answer).
    Idle,
    Acquiring {
        request: u64,
    },
    /// Holding a lease (as far as the client knows) until `until`, in one of the section's steps.
    Holding {
        token: Token,
        until: LocalTime,
        step: Step,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Reading { request: u64 },
    Working { read: i64, request: u64 },
    Writing { read: i64, request: u64 },
}

/// Counters of a client (volatile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockClientStats {
    pub grants: u64,
    pub sections_ok: u64,
    /// Sections given up because the lease ran out (by the client's clock) before the write.
    pub abandoned: u64,
    /// Sections whose read or write the storage refused (fencing).
    pub fenced: u64,
}

const EPOCH_KEY: &str = "lock-client/epoch";

/// A lock client node.
#[derive(Clone, Debug)]
pub struct LockClient {
    params: LockClientParams,
    server: NodeId,
    storage: NodeId,
    process: ProcessId,
    /// `clients` apart, so process ids of different clients never meet.
    process_stride: u64,
    phase: Phase,
    next_request: u64,
    /// The request whose timeout timer is running, with that timer.
    timeout: Option<(u64, TimerId)>,
    pub stats: LockClientStats,
}

impl LockClient {
    /// Client number `index` of `clients`, rebuilt after a restart with a fresh process.
    pub fn new(
        params: LockClientParams,
        index: usize,
        clients: usize,
        server: NodeId,
        storage: NodeId,
        disk: &Storage,
    ) -> Self {
        let epoch: u64 = disk.get(EPOCH_KEY).unwrap_or(0);
        let stride = clients.max(1) as u64;
        LockClient {
            params,
            server,
            storage,
            // A process per life of the client and per info: index + clients * n.
            process: index as u64 + stride * (epoch << 32),
            process_stride: stride,
            phase: Phase::Idle,
            next_request: 0,
            timeout: None,
            stats: LockClientStats::default(),
        }
    }

    /// The token and local expiry of the lease this client believes it holds, if any.
    pub fn current_lease(&self) -> Option<(Token, LocalTime)> {
        match self.phase {
            Phase::Holding { token, until, .. } => Some((token, until)),
            _ => None,
        }
    }

    fn request(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, to: NodeId, make: impl FnOnce(u64) -> LeaseMsg) -> u64 {
        self.next_request += 1;
        let request = self.next_request;
        ctx.send(to, make(request));
        if let Some((_, timer)) = self.timeout.take() {
            ctx.cancel_timer(timer);
        }
        let wait = Duration::from_nanos(self.params.request_timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::REQUEST_TIMEOUT, request));
        self.timeout = Some((request, timer));
        request
    }

    fn answered(&mut self, ctx: &mut Ctx<'_, LeaseMsg>) {
        if let Some((_, timer)) = self.timeout.take() {
            ctx.cancel_timer(timer);
        }
    }

    fn wait_then_acquire(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, after_ns: u64) {
        self.phase = Phase::Idle;
        ctx.set_timer(Duration::from_nanos(after_ns), timer_tag::make(timer_tag::ACQUIRE, 0));
    }

    /// Ends the critical section: releases the lease and thinks.
    fn end_section(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, token: Token) {
        ctx.send(self.server, LeaseMsg::Release { token });
        let think = self.params.think_ns;
        self.wait_then_acquire(ctx, think);
    }

    fn section_op(read: i64) -> Op {
        Op::new("cas", Some(Value::Int(0)), Value::List(vec![Value::Int(read), Value::Int(read + 1)]))
    }

    fn on_granted(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, token: Token, lease_ns: u64) {
        self.stats.grants += 1;
        let trusted = Duration::from_nanos(lease_ns.saturating_sub(self.params.safety_margin_ns));
        let until = ctx.now() + trusted;
        let storage = self.storage;
        let request = self.request(ctx, storage, |request| LeaseMsg::Read { request, token });
        self.phase = Phase::Holding { token, until, step: Step::Reading { request } };
    }

    fn on_read(
        &mut self,
        ctx: &mut Ctx<'_, LeaseMsg>,
        token: Token,
        until: LocalTime,
        request: u64,
        value: Option<i64>,
    ) {
        self.answered(ctx);
        let Some(read) = value else {
            // Fenced off before we began: a newer holder exists. Nothing was invoked.
            self.stats.fenced += 1;
            return self.end_section(ctx, token);
        };
        ctx.invoke(self.process, Self::section_op(read));
        let (min, max) = (self.params.work_min_ns, self.params.work_max_ns);
        let work_ns = ctx.rng().random_range(min..=max);
        ctx.set_timer(Duration::from_nanos(work_ns), timer_tag::make(timer_tag::WORK_DONE, request));
        self.phase = Phase::Holding { token, until, step: Step::Working { read, request } };
    }

    fn on_work_done(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, token: Token, until: LocalTime, read: i64) {
        if ctx.now() >= until {
            // By our clock the lease is over: writing now could clobber the next holder.
            self.stats.abandoned += 1;
            ctx.fail(self.process, Self::section_op(read), "lease-expired");
            return self.end_section(ctx, token);
        }
        let storage = self.storage;
        let request = self.request(ctx, storage, |request| LeaseMsg::Write { request, token, value: read + 1 });
        self.phase = Phase::Holding { token, until, step: Step::Writing { read, request } };
    }
}

impl Node for LockClient {
    type Msg = LeaseMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, LeaseMsg>) {
        let epoch: u64 = ctx.storage().get(EPOCH_KEY).unwrap_or(0);
        ctx.storage().put(EPOCH_KEY, &(epoch + 1));
        let stagger = ctx.rng().random_range(0..=self.params.think_ns.max(1));
        self.wait_then_acquire(ctx, stagger);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, _from: NodeId, msg: LeaseMsg) {
        match (msg, self.phase.clone()) {
            (LeaseMsg::Granted { request, token, lease_ns }, Phase::Acquiring { request: expected })
                if request == expected =>
            {
                self.answered(ctx);
                self.on_granted(ctx, token, lease_ns);
            }
            (LeaseMsg::Busy { request, retry_in_ns }, Phase::Acquiring { request: expected })
                if request == expected =>
            {
                self.answered(ctx);
                // Ask again right when the current lease should run out, plus a little jitter.
                let jitter = ctx.rng().random_range(0..=2_000_000u64);
                self.wait_then_acquire(ctx, retry_in_ns + jitter);
            }
            (
                LeaseMsg::ReadReply { request, value },
                Phase::Holding { token, until, step: Step::Reading { request: expected } },
            ) if request == expected => self.on_read(ctx, token, until, request, value),
            (
                LeaseMsg::WriteReply { request, accepted },
                Phase::Holding { token, step: Step::Writing { read, request: expected }, .. },
            ) if request == expected => {
                self.answered(ctx);
                if accepted {
                    self.stats.sections_ok += 1;
                    ctx.ok(self.process, Self::section_op(read));
                } else {
                    self.stats.fenced += 1;
                    ctx.fail(self.process, Self::section_op(read), "fenced");
                }
                self.end_section(ctx, token);
            }
            (LeaseMsg::Granted { token, .. }, _) => {
                // A grant we stopped waiting for: hand it back rather than let it run out unused.
                ctx.send(self.server, LeaseMsg::Release { token });
            }
            _ => {} // late or duplicated
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match (kind, self.phase.clone()) {
            (timer_tag::ACQUIRE, Phase::Idle) => {
                let server = self.server;
                let request = self.request(ctx, server, |request| LeaseMsg::Acquire { request });
                self.phase = Phase::Acquiring { request };
            }
            (timer_tag::WORK_DONE, Phase::Holding { token, until, step: Step::Working { read, request } })
                if request == id =>
            {
                self.on_work_done(ctx, token, until, read);
            }
            (timer_tag::REQUEST_TIMEOUT, phase) if self.timeout.is_some_and(|(request, _)| request == id) => {
                self.timeout = None;
                match phase {
                    Phase::Holding { token, step: Step::Writing { read, .. }, .. } => {
                        // The write may have been applied: unknown; this process is done.
                        ctx.info(self.process, Self::section_op(read), "timed-out");
                        self.process += self.process_stride;
                        self.end_section(ctx, token);
                    }
                    Phase::Holding { token, .. } => self.end_section(ctx, token),
                    _ => {
                        let think = self.params.think_ns;
                        self.wait_then_acquire(ctx, think);
                    }
                }
            }
            _ => {} // a timer of a step already over
        }
    }
}
