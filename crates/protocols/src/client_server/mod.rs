//! Client-server and scaling: a single stateful KV server, a stateless front tier over a storage
//! node, a load balancer with three strategies over heterogeneous servers, a TTL cache tier, a
//! sharded KV, and the resilience patterns (timeouts, retries with backoff and jitter, idempotency
//! keys, circuit breakers, bulkheads). Every configuration shares one message type ([`CsMsg`]) and
//! one node enum ([`CsNode`]); see [`build`] for the node layout of each registry entry.
//!
//! Deliberate bug switches, each caught by a test in `tests/client_server.rs`:
//! - `retry.idempotency_keys = false` (or `server.dedup = false`) with retries: writes double-apply;
//! - `cache.bug_ttl_never_expires`: a cache serves a stale value forever;
//! - `gateway.bulkheads = false` / `gateway.breaker.enabled = false`: one hung dependency takes the
//!   healthy ones down with it.

pub mod build;
pub mod cache;
pub mod client;
pub mod front;
pub mod kv;
pub mod lb;
pub mod msg;
pub mod node;
pub mod proxy;
pub mod resilience;
pub mod service;
pub mod sharding;

pub use build::{
    build_cache, build_front_tier, build_idempotent_retries, build_kv_server, build_load_balancer, build_resilience,
    build_sharded_kv, CacheSetup, FrontTierSetup, KvServerSetup, LoadBalancerSetup, ResilienceSetup, RetriesSetup,
    ShardedKvSetup,
};
pub use msg::{CsMsg, IdempotencyKey, Key, KvOp, Outcome};
pub use node::CsNode;

use crate::spec::ProtocolEntry;

/// The scenario-runnable configurations of this protocol family.
pub fn entries() -> Vec<ProtocolEntry> {
    build::entries()
}
