//! Building client-server simulations from a [`ClusterSpec`]: one parameter struct and one typed
//! builder per configuration, and the registry entries that box them.
//!
//! Node layout (names and ids), per configuration; clients are always `c1..cM` right after the
//! servers, extra nodes come last:
//!
//! | entry | `n1..nN` | extra nodes |
//! |---|---|---|
//! | `kv-server` | `n1`: the KV server (exactly one server) | — |
//! | `front-tier` | stateless fronts | `store` |
//! | `load-balancer` | fronts (some slow) | `lb`, `store` |
//! | `cache` | cache nodes (client `ci` uses cache `n((i-1) mod N + 1)`) | `store` |
//! | `sharded-kv` | shard servers | — |
//! | `resilience` | `n1`: gateway, `n2..nN`: dependencies 0..N-2 | — |
//! | `idempotent-retries` | `n1`: the deduplicating KV server | — |

use super::cache::{CacheParams, CacheServer};
use super::client::{ClientConfig, CsClient, OpMix, RetryParams, Routing};
use super::front::{FrontParams, FrontServer};
use super::kv::{KvServer, KvServerParams};
use super::lb::{LbStrategy, LoadBalancer};
use super::node::CsNode;
use super::resilience::{Dependency, DependencyParams, Gateway, GatewayParams};
use super::service::ServiceParams;
use super::sharding::ShardMap;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::{AnySimulation, NodeId, Simulation};
use serde::{Deserialize, Serialize};

type Sim = Simulation<CsNode>;

/// The workloads of the configurations in front of a KV store: registers and counters.
const KV_WORKLOADS: &[WorkloadKind] = &[WorkloadKind::Register, WorkloadKind::Counter];

fn new_sim(spec: &ClusterSpec) -> Result<Sim, String> {
    Simulation::new(spec.sim_config()).map_err(|e| e.to_string())
}

fn check_workload(spec: &ClusterSpec, allowed: &[WorkloadKind]) -> Result<(), String> {
    if !allowed.contains(&spec.workload.kind) {
        return Err(format!("workload {:?} is not served here (expected one of {allowed:?})", spec.workload.kind));
    }
    check_clients(spec)
}

fn check_clients(spec: &ClusterSpec) -> Result<(), String> {
    if spec.workload.clients == 0 || spec.workload.concurrency == 0 {
        return Err("the workload needs at least one client with concurrency at least 1".into());
    }
    if let Some(rate) = spec.workload.rate_per_s {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(format!("workload.rate_per_s must be positive, got {rate}"));
        }
    }
    Ok(())
}

/// Adds the clients `c1..cM`, each with `routing(i)`.
fn add_clients(
    sim: &mut Sim,
    spec: &ClusterSpec,
    retry: &RetryParams,
    mix: OpMix,
    routing: impl Fn(usize) -> Routing,
) -> Result<(), String> {
    retry.validate()?;
    let workload = &spec.workload;
    // Open loop: `concurrency` becomes the bound on operations outstanding per client.
    let slots = match workload.rate_per_s {
        Some(_) => crate::workload::MAX_OPEN_LOOP_SLOTS,
        None => workload.concurrency,
    };
    let total_slots = (workload.clients * slots) as u64;
    for i in 0..workload.clients {
        let config = ClientConfig {
            client_index: i as u32,
            routing: routing(i),
            mix: mix.clone(),
            concurrency: slots,
            rate_per_s: workload.rate_per_s,
            think_time_ns: workload.think_time_ns,
            stop_at_ns: workload.stop_at_ns,
            max_ops: workload.max_ops_per_client,
            retry: retry.clone(),
            attempt_timeout_ns: retry.attempt_timeout_ns.unwrap_or(workload.timeout_ns),
            process_base: (i * slots) as u64,
            process_stride: total_slots,
        };
        let index = sim.node_count();
        sim.add_node_with_clock(&ClusterSpec::client_name(i), spec.clock(index), move |_, storage| {
            CsNode::Client(CsClient::new(config.clone(), storage))
        });
    }
    Ok(())
}

fn register_mix(spec: &ClusterSpec) -> OpMix {
    OpMix::Register { read_fraction: spec.workload.read_fraction, keys: spec.workload.keys.max(1) as u64 }
}

fn counter_mix(spec: &ClusterSpec) -> OpMix {
    OpMix::Counter { read_fraction: spec.workload.read_fraction, keys: spec.workload.keys.max(1) as u64 }
}

fn kv_mix(spec: &ClusterSpec) -> OpMix {
    match spec.workload.kind {
        WorkloadKind::Counter => counter_mix(spec),
        _ => register_mix(spec),
    }
}

fn add_kv(sim: &mut Sim, spec: &ClusterSpec, name: &str, params: &KvServerParams) -> Result<NodeId, String> {
    params.service.validate()?;
    let params = params.clone();
    let index = sim.node_count();
    Ok(sim.add_node_with_clock(name, spec.clock(index), move |_, storage| {
        CsNode::Kv(KvServer::new(params.clone(), 1.0, storage))
    }))
}

/// Adds the storage node `store` as extra node `extra` (from 0: the nodes after the clients), which
/// the nodes in front of it were given as its id before it existed.
fn add_store(sim: &mut Sim, spec: &ClusterSpec, extra: usize, params: &KvServerParams) -> Result<NodeId, String> {
    let id = add_kv(sim, spec, "store", params)?;
    assert_eq!(id, spec.extra_node_id(extra), "the store is extra node {extra}");
    Ok(id)
}

/// One KV server `n1` (entry `entry` serves exactly one server), clients `c1..cM` talking to it
/// directly with operations from `mix`.
fn build_single_server(
    spec: &ClusterSpec,
    entry: &str,
    workloads: &[WorkloadKind],
    server: &KvServerParams,
    retry: &RetryParams,
    mix: OpMix,
) -> Result<Sim, String> {
    check_workload(spec, workloads)?;
    if spec.nodes != 1 {
        return Err(format!("{entry} has exactly one server, got nodes = {}", spec.nodes));
    }
    let mut sim = new_sim(spec)?;
    let server = add_kv(&mut sim, spec, &ClusterSpec::server_name(0), server)?;
    add_clients(&mut sim, spec, retry, mix, |_| Routing::Fixed(server))?;
    Ok(sim)
}

/// Parameters of `kv-server`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvServerSetup {
    pub server: KvServerParams,
    pub retry: RetryParams,
}

/// One stateful KV server `n1`, clients `c1..cM` talking to it directly.
pub fn build_kv_server(spec: &ClusterSpec, params: &KvServerSetup) -> Result<Sim, String> {
    build_single_server(spec, "kv-server", KV_WORKLOADS, &params.server, &params.retry, kv_mix(spec))
}

/// Parameters of `front-tier`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontTierSetup {
    pub front: FrontParams,
    pub store: KvServerParams,
    pub retry: RetryParams,
}

/// Stateless fronts `n1..nN` over one storage node `store`; each attempt goes to a random front.
pub fn build_front_tier(spec: &ClusterSpec, params: &FrontTierSetup) -> Result<Sim, String> {
    check_workload(spec, KV_WORKLOADS)?;
    if spec.nodes == 0 {
        return Err("front-tier needs at least one front".into());
    }
    params.front.service.validate()?;
    let mut sim = new_sim(spec)?;
    let store = spec.extra_node_id(0);
    let fronts = add_fronts(&mut sim, spec, &params.front, store, &[], 1.0);
    add_clients(&mut sim, spec, &params.retry, kv_mix(spec), |_| Routing::Random(fronts.clone()))?;
    add_store(&mut sim, spec, 0, &params.store)?;
    Ok(sim)
}

fn add_fronts(
    sim: &mut Sim,
    spec: &ClusterSpec,
    params: &FrontParams,
    store: NodeId,
    slow: &[usize],
    factor: f64,
) -> Vec<NodeId> {
    (0..spec.nodes)
        .map(|i| {
            let params = params.clone();
            let slowdown = if slow.contains(&i) { factor } else { 1.0 };
            sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |_, _| {
                CsNode::Front(FrontServer::new(&params, store, slowdown))
            })
        })
        .collect()
}

/// Parameters of `load-balancer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadBalancerSetup {
    pub strategy: LbStrategy,
    pub front: FrontParams,
    /// Servers (from 0 for `n1`) whose service times are multiplied by `slow_factor`.
    pub slow_servers: Vec<usize>,
    pub slow_factor: f64,
    pub backend_timeout_ns: u64,
    pub store: KvServerParams,
    pub retry: RetryParams,
}

impl Default for LoadBalancerSetup {
    fn default() -> Self {
        LoadBalancerSetup {
            strategy: LbStrategy::PowerOfTwoChoices,
            front: FrontParams::default(),
            slow_servers: vec![0],
            slow_factor: 8.0,
            backend_timeout_ns: 1_000_000_000,
            store: KvServerParams::default(),
            retry: RetryParams::default(),
        }
    }
}

/// Clients -> `lb` -> fronts `n1..nN` (the `slow_servers` slower) -> `store`.
pub fn build_load_balancer(spec: &ClusterSpec, params: &LoadBalancerSetup) -> Result<Sim, String> {
    check_workload(spec, KV_WORKLOADS)?;
    if spec.nodes == 0 {
        return Err("load-balancer needs at least one server".into());
    }
    if let Some(bad) = params.slow_servers.iter().find(|&&s| s >= spec.nodes) {
        return Err(format!("slow_servers names server index {bad}, but there are {} servers", spec.nodes));
    }
    if !(params.slow_factor.is_finite() && params.slow_factor > 0.0) {
        return Err("slow_factor must be positive and finite".into());
    }
    params.front.service.validate()?;
    let mut sim = new_sim(spec)?;
    let (lb, store) = (spec.extra_node_id(0), spec.extra_node_id(1));
    let fronts = add_fronts(&mut sim, spec, &params.front, store, &params.slow_servers, params.slow_factor);
    add_clients(&mut sim, spec, &params.retry, kv_mix(spec), |_| Routing::Fixed(lb))?;
    let (strategy, timeout) = (params.strategy, params.backend_timeout_ns);
    let id = sim.add_node_with_clock("lb", spec.clock(lb.index()), move |_, _| {
        CsNode::Lb(LoadBalancer::new(strategy, fronts.clone(), timeout))
    });
    assert_eq!(id, lb, "the load balancer is the first node after the clients");
    add_store(&mut sim, spec, 1, &params.store)?;
    Ok(sim)
}

/// Parameters of `cache`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSetup {
    pub cache: CacheParams,
    pub store: KvServerParams,
    pub retry: RetryParams,
}

/// Cache nodes `n1..nN` over `store`; client `ci` always uses cache `n((i-1) mod N + 1)`.
pub fn build_cache(spec: &ClusterSpec, params: &CacheSetup) -> Result<Sim, String> {
    check_workload(spec, &[WorkloadKind::Register])?;
    if spec.nodes == 0 {
        return Err("cache needs at least one cache node".into());
    }
    let mut sim = new_sim(spec)?;
    let store = spec.extra_node_id(0);
    let caches: Vec<NodeId> = (0..spec.nodes)
        .map(|i| {
            let cache = params.cache.clone();
            sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |_, _| {
                CsNode::Cache(CacheServer::new(cache.clone(), store))
            })
        })
        .collect();
    add_clients(&mut sim, spec, &params.retry, register_mix(spec), |i| Routing::Fixed(caches[i % caches.len()]))?;
    add_store(&mut sim, spec, 0, &params.store)?;
    Ok(sim)
}

/// Parameters of `sharded-kv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardedKvSetup {
    /// Shards = servers × this.
    pub shards_per_server: usize,
    pub server: KvServerParams,
    pub retry: RetryParams,
}

impl Default for ShardedKvSetup {
    fn default() -> Self {
        ShardedKvSetup {
            shards_per_server: 4,
            // A finite capacity per server, so that adding shards adds throughput.
            server: KvServerParams {
                service: ServiceParams { mean_service_ns: 1_000_000, workers: 1, ..ServiceParams::default() },
                ..KvServerParams::default()
            },
            retry: RetryParams::default(),
        }
    }
}

/// Shard servers `n1..nN`; clients route by the shard map (`shards_per_server × N` shards, round robin).
pub fn build_sharded_kv(spec: &ClusterSpec, params: &ShardedKvSetup) -> Result<Sim, String> {
    check_workload(spec, KV_WORKLOADS)?;
    if spec.nodes == 0 || params.shards_per_server == 0 {
        return Err("sharded-kv needs at least one server and one shard per server".into());
    }
    params.server.service.validate()?;
    let mut sim = new_sim(spec)?;
    let servers: Vec<NodeId> = (0..spec.nodes as u32).map(NodeId).collect();
    let map = ShardMap::round_robin(spec.nodes * params.shards_per_server, &servers);
    for (i, &me) in servers.iter().enumerate() {
        let (server, map) = (params.server.clone(), map.clone());
        let id = sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |_, storage| {
            CsNode::Kv(KvServer::new(server.clone(), 1.0, storage).with_shards(map.clone(), me))
        });
        assert_eq!(id, me);
    }
    add_clients(&mut sim, spec, &params.retry, kv_mix(spec), |_| Routing::Shards(map.clone()))?;
    Ok(sim)
}

/// Parameters of `resilience`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceSetup {
    pub gateway: GatewayParams,
    pub dependency: DependencyParams,
    /// The dependency (from 0 for `n2`) that hangs, if any.
    pub hanging_dependency: Option<usize>,
    pub hang_from_ns: u64,
    pub hang_until_ns: u64,
    pub retry: RetryParams,
}

impl Default for ResilienceSetup {
    fn default() -> Self {
        ResilienceSetup {
            gateway: GatewayParams::default(),
            dependency: DependencyParams::default(),
            hanging_dependency: Some(0),
            hang_from_ns: 1_000_000_000,
            hang_until_ns: 3_000_000_000,
            retry: RetryParams::default(),
        }
    }
}

/// Gateway `n1` over dependencies `n2..nN`; clients call a random dependency through the gateway.
pub fn build_resilience(spec: &ClusterSpec, params: &ResilienceSetup) -> Result<Sim, String> {
    check_clients(spec)?;
    if spec.nodes < 2 {
        return Err("resilience needs a gateway and at least one dependency (nodes >= 2)".into());
    }
    let dependencies: Vec<NodeId> = (1..spec.nodes as u32).map(NodeId).collect();
    params.gateway.validate(dependencies.len())?;
    let client_timeout_ns = params.retry.attempt_timeout_ns.unwrap_or(spec.workload.timeout_ns);
    if params.gateway.call_timeout_ns >= client_timeout_ns {
        return Err(format!(
            "gateway.call_timeout_ns ({}) must be shorter than the client's timeout ({client_timeout_ns}): a client \
             that gives up first leaves the gateway holding a worker for a call nobody waits for",
            params.gateway.call_timeout_ns
        ));
    }
    params.dependency.service.validate()?;
    if let Some(bad) = params.hanging_dependency.filter(|&d| d >= dependencies.len()) {
        return Err(format!("hanging_dependency {bad}: there are {} dependencies", dependencies.len()));
    }
    let mut sim = new_sim(spec)?;
    let gateway = params.gateway.clone();
    let deps = dependencies.clone();
    sim.add_node_with_clock("n1", spec.clock(0), move |_, _| {
        CsNode::Gateway(Gateway::new(gateway.clone(), deps.clone()))
    });
    for d in 0..dependencies.len() {
        let dependency = params.dependency.clone();
        let hang = (params.hanging_dependency == Some(d)).then_some((params.hang_from_ns, params.hang_until_ns));
        sim.add_node_with_clock(&ClusterSpec::server_name(d + 1), spec.clock(d + 1), move |_, _| {
            CsNode::Dependency(Dependency::new(&dependency, hang))
        });
    }
    let mix = OpMix::Calls { dependencies: dependencies.len() as u32 };
    add_clients(&mut sim, spec, &params.retry, mix, |_| Routing::Fixed(NodeId(0)))?;
    Ok(sim)
}

/// Parameters of `idempotent-retries`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetriesSetup {
    pub server: KvServerParams,
    pub retry: RetryParams,
}

impl Default for RetriesSetup {
    fn default() -> Self {
        RetriesSetup {
            server: KvServerParams::default(),
            retry: RetryParams { attempt_timeout_ns: Some(100_000_000), max_attempts: 6, ..RetryParams::default() },
        }
    }
}

/// One deduplicating KV server `n1`; clients add to counters with timeouts, retries and keys.
pub fn build_idempotent_retries(spec: &ClusterSpec, params: &RetriesSetup) -> Result<Sim, String> {
    let workloads = &[WorkloadKind::Counter, WorkloadKind::Register];
    build_single_server(spec, "idempotent-retries", workloads, &params.server, &params.retry, counter_mix(spec))
}

fn boxed<P: serde::de::DeserializeOwned + Default>(
    spec: &ClusterSpec,
    build: fn(&ClusterSpec, &P) -> Result<Sim, String>,
) -> Result<Box<dyn AnySimulation>, String> {
    let params: P = spec.params()?;
    Ok(Box::new(build(spec, &params)?))
}

/// The registry entries of the client-server family.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![
        ProtocolEntry {
            name: "kv-server",
            description: "single stateful KV server: linearizable, and a single point of failure",
            workloads: KV_WORKLOADS,
            build: |spec| boxed(spec, build_kv_server),
        },
        ProtocolEntry {
            name: "front-tier",
            description: "stateless front servers over one storage node (fronts fail over, the store cannot)",
            workloads: KV_WORKLOADS,
            build: |spec| boxed(spec, build_front_tier),
        },
        ProtocolEntry {
            name: "load-balancer",
            description: "load balancer (round robin, least outstanding, power of two choices) over uneven servers",
            workloads: KV_WORKLOADS,
            build: |spec| boxed(spec, build_load_balancer),
        },
        ProtocolEntry {
            name: "cache",
            description: "read-through cache tier with a TTL over a store: stale reads bounded by the TTL",
            workloads: &[WorkloadKind::Register],
            build: |spec| boxed(spec, build_cache),
        },
        ProtocolEntry {
            name: "sharded-kv",
            description: "KV sharded by a static shard map: throughput grows with the number of servers",
            workloads: KV_WORKLOADS,
            build: |spec| boxed(spec, build_sharded_kv),
        },
        ProtocolEntry {
            name: "resilience",
            description: "gateway with timeouts, circuit breakers and bulkheads over a hanging dependency",
            workloads: &[WorkloadKind::None],
            build: |spec| boxed(spec, build_resilience),
        },
        ProtocolEntry {
            name: "idempotent-retries",
            description: "retries with exponential backoff and jitter, deduplicated by idempotency keys",
            workloads: &[WorkloadKind::Counter],
            build: |spec| boxed(spec, build_idempotent_retries),
        },
    ]
}
