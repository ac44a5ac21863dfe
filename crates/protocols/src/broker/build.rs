//! Building a broker simulation from a [`ClusterSpec`].
//!
//! | nodes | role |
//! |---|---|
//! | `n1` | the broker |
//! | `n2..nN` | consumers (at least one: `nodes >= 2`) |
//! | `c1..cM` | producers, open loop at `workload.rate_per_s` (50/s when absent) |
//! | `sink` | the database consumers update |
//! | `reader` | reads the sink's counters every `read_interval_ns` |

use super::clients::{Producer, ProducerConfig, Reader, ReaderConfig, Spike};
use super::consumer::{Consumer, ConsumerParams};
use super::queue::{QueueNode, QueueParams};
use super::sink::{Sink, SinkParams};
use super::BrokerNode;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::{NodeId, Simulation};
use serde::{Deserialize, Serialize};

/// Parameters of the `broker` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSetup {
    pub broker: QueueParams,
    pub consumer: ConsumerParams,
    pub sink: SinkParams,
    /// A window of producer local time during which they publish `factor` times faster.
    pub spike: Option<Spike>,
    /// The reader's pause between reads.
    pub read_interval_ns: u64,
}

impl Default for BrokerSetup {
    fn default() -> Self {
        BrokerSetup {
            broker: QueueParams::default(),
            consumer: ConsumerParams::default(),
            sink: SinkParams::default(),
            spike: None,
            read_interval_ns: 20_000_000,
        }
    }
}

/// The producers' rate when the workload names none.
pub const DEFAULT_RATE_PER_S: f64 = 50.0;

/// Broker `n1`, consumers `n2..nN`, producers `c1..cM`, then `sink` and `reader`.
pub fn build_broker(spec: &ClusterSpec, params: &BrokerSetup) -> Result<Simulation<BrokerNode>, String> {
    if spec.workload.kind != WorkloadKind::Counter {
        return Err(format!("broker serves the counter workload, not {:?}", spec.workload.kind));
    }
    if spec.nodes < 2 {
        return Err(format!("broker needs the broker and at least one consumer (nodes >= 2), got {}", spec.nodes));
    }
    if spec.workload.clients == 0 {
        return Err("broker needs at least one producer (workload.clients >= 1)".into());
    }
    let rate = spec.workload.rate_per_s.unwrap_or(DEFAULT_RATE_PER_S);
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(format!("workload.rate_per_s must be positive, got {rate}"));
    }
    if let Some(spike) = &params.spike {
        if !(spike.factor > 0.0 && spike.factor.is_finite()) || spike.from_ns > spike.until_ns {
            return Err("spike: factor must be positive and from_ns <= until_ns".into());
        }
    }
    if params.read_interval_ns == 0 {
        return Err("read_interval_ns must be positive".into());
    }
    params.broker.validate()?;
    params.consumer.validate()?;
    if params.consumer.fetch_timeout_ns <= params.broker.long_poll_ns {
        return Err(
            "consumer.fetch_timeout_ns must exceed broker.long_poll_ns (an empty long poll is an answer)".into()
        );
    }
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let broker = NodeId(0);
    let producers = spec.workload.clients;
    let sink = NodeId((spec.nodes + producers) as u32);
    let queue = params.broker.clone();
    sim.add_node_with_clock(&ClusterSpec::server_name(0), spec.clock(0), move |_, storage| {
        BrokerNode::Broker(QueueNode::new(queue.clone(), storage))
    });
    for i in 1..spec.nodes {
        let consumer = params.consumer.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |_, _| {
            BrokerNode::Consumer(Consumer::new(consumer.clone(), broker, sink))
        });
    }
    let keys = spec.workload.keys.max(1) as u64;
    for i in 0..producers {
        let config = ProducerConfig {
            index: i as u32,
            producers: producers as u32,
            broker,
            keys,
            rate_per_s: rate,
            spike: params.spike.clone(),
            publish_timeout_ns: spec.workload.timeout_ns.max(1),
            stop_at_ns: spec.workload.stop_at_ns,
            max_ops: spec.workload.max_ops_per_client,
        };
        let index = spec.nodes + i;
        sim.add_node_with_clock(&ClusterSpec::client_name(i), spec.clock(index), move |_, storage| {
            BrokerNode::Producer(Producer::new(config.clone(), storage))
        });
    }
    let sink_params = params.sink.clone();
    let id = sim.add_node_with_clock("sink", spec.clock(sink.index()), move |_, storage| {
        BrokerNode::Sink(Sink::new(sink_params.clone(), storage))
    });
    assert_eq!(id, sink, "the sink comes right after the producers");
    let reader = ReaderConfig {
        producers: producers as u32,
        sink,
        keys,
        read_interval_ns: params.read_interval_ns,
        timeout_ns: spec.workload.timeout_ns.max(1),
    };
    sim.add_node_with_clock("reader", spec.clock(sink.index() + 1), move |_, storage| {
        BrokerNode::Reader(Reader::new(reader.clone(), storage))
    });
    Ok(sim)
}

/// The registry entries of the broker family.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "broker",
        description: "message queue with acks, redelivery after a visibility timeout and idempotent consumers",
        workloads: &[WorkloadKind::Counter],
        build: |spec| {
            let params: BrokerSetup = spec.params()?;
            Ok(Box::new(build_broker(spec, &params)?))
        },
    }]
}
