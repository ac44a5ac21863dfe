//! Service time: a node with `workers` parallel workers and a bounded FIFO queue, each job holding a
//! worker for a drawn service time. This is what gives servers a capacity, so that load balancing,
//! sharding and overload show up in latency and throughput (an M/M/c queue with exponential times).

use super::msg::timer_tag;
use detsim_core::{Ctx, Message};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How long a server works on a request and how many it works on at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceParams {
    /// Mean service time of one request; 0 = instantaneous (no capacity limit).
    pub mean_service_ns: u64,
    /// Exponentially distributed service times (M/M/c); `false`: every request takes the mean.
    pub exponential: bool,
    /// Requests served in parallel.
    pub workers: usize,
    /// Requests waiting for a worker beyond which new ones are rejected as overloaded.
    pub queue_limit: usize,
}

impl Default for ServiceParams {
    fn default() -> Self {
        ServiceParams { mean_service_ns: 0, exponential: true, workers: 1, queue_limit: 10_000 }
    }
}

impl ServiceParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("service.workers must be at least 1".into());
        }
        Ok(())
    }
}

/// A bounded FIFO queue in front of `workers` workers. Jobs are opaque values of type `T`.
#[derive(Clone, Debug)]
pub struct ServiceQueue<T> {
    params: ServiceParams,
    /// Service times are multiplied by this (a slow, heterogeneous server has a factor above 1).
    slowdown: f64,
    waiting: VecDeque<T>,
    in_service: BTreeMap<u64, T>,
    next_job: u64,
    /// Jobs refused because the queue was full.
    pub rejected: u64,
    /// Jobs completed.
    pub completed: u64,
}

impl<T> ServiceQueue<T> {
    pub fn new(params: ServiceParams, slowdown: f64) -> Self {
        assert!(params.workers > 0, "validated: at least one worker");
        assert!(slowdown > 0.0, "slowdown factor is positive");
        ServiceQueue {
            params,
            slowdown,
            waiting: VecDeque::new(),
            in_service: BTreeMap::new(),
            next_job: 0,
            rejected: 0,
            completed: 0,
        }
    }

    /// True when requests take no time (then callers handle them at once).
    pub fn is_instant(&self) -> bool {
        self.params.mean_service_ns == 0
    }

    /// Jobs queued or in service.
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.in_service.len()
    }

    /// Admits a job: starts it on a free worker or queues it; gives it back when the queue is full.
    pub fn offer<M: Message>(&mut self, ctx: &mut Ctx<'_, M>, job: T) -> Result<(), T> {
        if self.in_service.len() < self.params.workers {
            self.start(ctx, job);
            return Ok(());
        }
        if self.waiting.len() >= self.params.queue_limit {
            self.rejected += 1;
            return Err(job);
        }
        self.waiting.push_back(job);
        Ok(())
    }

    /// The job whose service timer (id from the timer tag) fired; starts the next waiting job.
    pub fn complete<M: Message>(&mut self, ctx: &mut Ctx<'_, M>, job_id: u64) -> Option<T> {
        let job = self.in_service.remove(&job_id)?;
        self.completed += 1;
        if let Some(next) = self.waiting.pop_front() {
            self.start(ctx, next);
        }
        assert!(self.in_service.len() <= self.params.workers, "never more jobs than workers");
        Some(job)
    }

    fn start<M: Message>(&mut self, ctx: &mut Ctx<'_, M>, job: T) {
        let job_id = self.next_job;
        self.next_job += 1;
        let mean_ns = self.params.mean_service_ns as f64 * self.slowdown;
        let service_ns = if self.params.exponential {
            // Inverse-transform sampling of Exp(1/mean); 1 - u is in (0, 1], so ln is finite.
            let u: f64 = ctx.rng().random::<f64>();
            -mean_ns * (1.0 - u).ln()
        } else {
            mean_ns
        };
        self.in_service.insert(job_id, job);
        ctx.set_timer(Duration::from_nanos(service_ns.round() as u64), timer_tag::make(timer_tag::SERVICE, job_id));
    }
}
