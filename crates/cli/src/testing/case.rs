//! A test case (seed, network conditions, fault windows, client workload) and the proptest strategies
//! that draw them. Every part shrinks towards "less": fewer fault windows (a `Vec` shrinks by dropping
//! elements), shorter windows, fewer operations, no loss, low latency.

use crate::testing::schedule::{FaultKinds, FaultWindow, WindowFault};
use detsim_core::{LatencyDist, LinkConfig, NetworkConfig, Op, Value};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The network every link has for one case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkConditions {
    pub latency_min_ms: u32,
    /// Latency is uniform in `[min, min + spread]`.
    pub latency_spread_ms: u32,
    pub loss_percent: u8,
    pub duplicate_percent: u8,
    /// FIFO links never reorder.
    pub fifo: bool,
}

impl Default for NetworkConditions {
    fn default() -> Self {
        NetworkConditions {
            latency_min_ms: 1,
            latency_spread_ms: 9,
            loss_percent: 0,
            duplicate_percent: 0,
            fifo: false,
        }
    }
}

impl NetworkConditions {
    /// The core's network configuration for these conditions.
    pub fn to_config(&self) -> NetworkConfig {
        let min_ms = u64::from(self.latency_min_ms);
        NetworkConfig::new(LinkConfig {
            latency: LatencyDist::uniform_ms(min_ms, min_ms + u64::from(self.latency_spread_ms)),
            loss: f64::from(self.loss_percent) / 100.0,
            duplicate: f64::from(self.duplicate_percent) / 100.0,
            fifo: self.fifo,
            bandwidth_bytes_per_s: None,
        })
    }
}

impl fmt::Display for NetworkConditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency {}..{}ms, loss {}%, duplication {}%, {}",
            self.latency_min_ms,
            self.latency_min_ms + self.latency_spread_ms,
            self.loss_percent,
            self.duplicate_percent,
            if self.fifo { "FIFO" } else { "reordering" }
        )
    }
}

/// Which operations a workload issues; each matches a model of detsim-check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpMix {
    /// `read` / `write` (model `Register`).
    Register,
    /// `read` / `write` / `cas` with value `[from to]` (model `CasRegister`).
    CasRegister,
    /// `add` / `read`, a read returning every element (model `Set`).
    Set,
    /// `add` (value 1) / `read` (model `Counter`).
    Counter,
}

/// One planned operation, before values are given out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlannedOp {
    Read {
        key: u8,
    },
    /// A write (a register), or an add (a set or counter).
    Write {
        key: u8,
    },
    /// A cas from the value written `back` writes earlier on the key (the latest when 0); a write for
    /// mixes without cas.
    Cas {
        key: u8,
        back: u8,
    },
}

/// The client workload of one case: operations dealt to clients in turn (op `i` to client
/// `i % clients`), each write with a unique value (its position in the plan, from 1), so the checkers
/// can use their fast paths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadPlan {
    pub ops: Vec<PlannedOp>,
    /// Pause between a client's operations.
    pub think_ms: u32,
}

impl WorkloadPlan {
    /// The operations of each of `clients` clients, with values, over `keys` keys (no key when 1).
    pub fn ops_per_client(&self, mix: OpMix, clients: u32, keys: u32) -> Vec<Vec<Op>> {
        assert!(clients > 0 && keys > 0, "at least one client and one key");
        let mut per_client = vec![Vec::new(); clients as usize];
        let key_of = |key: u8| if keys == 1 { None } else { Some(Value::Int(i64::from(u32::from(key) % keys))) };
        // Values written per key, in plan order, for cas to name a `from` that was really written.
        let mut written: std::collections::BTreeMap<u32, Vec<i64>> = std::collections::BTreeMap::new();
        for (index, planned) in self.ops.iter().enumerate() {
            let value = index as i64 + 1;
            let op = match (*planned, mix) {
                (PlannedOp::Read { key }, _) => Op::new("read", key_of(key), Value::Nil),
                (PlannedOp::Write { key } | PlannedOp::Cas { key, .. }, OpMix::Set) => {
                    Op::new("add", key_of(key), Value::Int(value))
                }
                (PlannedOp::Write { key } | PlannedOp::Cas { key, .. }, OpMix::Counter) => {
                    Op::new("add", key_of(key), Value::Int(1))
                }
                (PlannedOp::Write { key } | PlannedOp::Cas { key, .. }, OpMix::Register)
                | (PlannedOp::Write { key }, OpMix::CasRegister) => {
                    written.entry(u32::from(key) % keys).or_default().push(value);
                    Op::new("write", key_of(key), Value::Int(value))
                }
                (PlannedOp::Cas { key, back }, OpMix::CasRegister) => {
                    let history = written.entry(u32::from(key) % keys).or_default();
                    let from = history
                        .len()
                        .checked_sub(1 + usize::from(back))
                        .map_or(Value::Nil, |at| Value::Int(history[at]));
                    history.push(value);
                    Op::new("cas", key_of(key), Value::List(vec![from, Value::Int(value)]))
                }
            };
            per_client[index % clients as usize].push(op);
        }
        per_client
    }
}

/// One generated test: everything a run depends on besides the system under test.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestCase {
    /// The simulation seed (every random draw of the run comes from it).
    pub seed: u64,
    pub network: NetworkConditions,
    /// Fault windows; all are over by the heal.
    pub faults: Vec<FaultWindow>,
    pub workload: WorkloadPlan,
}

impl TestCase {
    /// A case with no faults, the default network and the given workload.
    pub fn calm(seed: u64, workload: WorkloadPlan) -> Self {
        TestCase { seed, network: NetworkConditions::default(), faults: Vec::new(), workload }
    }

    /// The case as one line of JSON (what `DETSIM_REPLAY` takes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("test cases serialise to JSON")
    }

    /// Reads a case written by [`TestCase::to_json`].
    pub fn from_json(text: &str) -> Result<TestCase, String> {
        serde_json::from_str(text).map_err(|e| format!("not a detsim test case: {e}"))
    }
}

/// The space cases are drawn from.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseSpace {
    /// How many cases proptest runs (`PROPTEST_CASES` overrides it).
    pub cases: u32,
    /// Most operations in a workload (at least one is always drawn).
    pub max_ops: usize,
    /// Most fault windows in a schedule.
    pub max_faults: usize,
    pub fault_kinds: FaultKinds,
    /// Shortest and longest fault window.
    pub min_window_ms: u32,
    pub max_window_ms: u32,
    /// Draw latency, loss, duplication and FIFO too; otherwise every case has the default network.
    pub vary_network: bool,
    pub max_loss_percent: u8,
    pub max_duplicate_percent: u8,
    /// Think time between a client's operations is drawn from this range.
    pub think_ms: (u32, u32),
    /// Each side of a drawn partition has at least this many servers (1: any split).
    pub min_partition_side: u32,
    /// Partitions may cut clients `c1..` up to this many off with their side (0: clients always
    /// reach both sides). A client on the minority side is what makes a stale read observable.
    pub partition_clients: u32,
}

impl Default for CaseSpace {
    fn default() -> Self {
        CaseSpace {
            cases: 32,
            max_ops: 40,
            max_faults: 6,
            fault_kinds: FaultKinds::ALL,
            min_window_ms: 0,
            max_window_ms: 800,
            vary_network: true,
            max_loss_percent: 5,
            max_duplicate_percent: 5,
            think_ms: (10, 60),
            min_partition_side: 1,
            partition_clients: 0,
        }
    }
}

/// Strategy: network conditions; shrinks towards 1 ms constant-ish latency, no loss, no duplication.
pub fn network_conditions(max_loss_percent: u8, max_duplicate_percent: u8) -> BoxedStrategy<NetworkConditions> {
    (1u32..=5, 0u32..=20, 0..=max_loss_percent, 0..=max_duplicate_percent, any::<bool>())
        .prop_map(|(latency_min_ms, latency_spread_ms, loss_percent, duplicate_percent, fifo)| NetworkConditions {
            latency_min_ms,
            latency_spread_ms,
            loss_percent,
            duplicate_percent,
            fifo,
        })
        .boxed()
}

/// Strategy: one fault on one of `servers` servers (the kinds allowed); shrinks towards a crash of n1.
pub fn window_fault(servers: u32, kinds: FaultKinds) -> BoxedStrategy<WindowFault> {
    window_fault_with_sides(servers, kinds, 1, 0)
}

/// Like [`window_fault`], with at least `min_side` servers on each side of a partition (no
/// partitions when the cluster is too small for two such sides), and partitions that may take
/// some of clients `0..partition_clients` along with their side.
pub fn window_fault_with_sides(
    servers: u32,
    kinds: FaultKinds,
    min_side: u32,
    partition_clients: u32,
) -> BoxedStrategy<WindowFault> {
    assert!(servers > 0, "a cluster has at least one server");
    let min_side = min_side.max(1);
    assert!(!kinds.is_empty(), "at least one fault kind");
    let node = move || 0..servers;
    let mut options: Vec<BoxedStrategy<WindowFault>> = Vec::new();
    if kinds.crash {
        options.push(node().prop_map(|node| WindowFault::Crash { node }).boxed());
    }
    if kinds.pause {
        options.push(node().prop_map(|node| WindowFault::Pause { node }).boxed());
    }
    if kinds.isolate {
        options.push(node().prop_map(|node| WindowFault::Isolate { node }).boxed());
    }
    if kinds.partition && servers >= 2 * min_side {
        // A random proper, non-empty subset of the servers; it shrinks towards smaller sides.
        let sides = min_side as usize..=(servers - min_side) as usize;
        let side = proptest::sample::subsequence((0..servers).collect::<Vec<u32>>(), sides);
        let clients =
            proptest::sample::subsequence((0..partition_clients).collect::<Vec<u32>>(), 0..=partition_clients as usize);
        options.push((side, clients).prop_map(|(side, clients)| WindowFault::Partition { side, clients }).boxed());
    }
    if kinds.one_way && servers > 1 {
        options.push(
            (node(), 1..servers)
                .prop_map(move |(from, offset)| WindowFault::OneWay { from, to: (from + offset) % servers })
                .boxed(),
        );
    }
    if kinds.clock_jump {
        options.push((node(), -500i32..=500).prop_map(|(node, by_ms)| WindowFault::ClockJump { node, by_ms }).boxed());
    }
    if kinds.loss_burst {
        options.push(
            (node(), 10u8..=100).prop_map(|(node, loss_percent)| WindowFault::LossBurst { node, loss_percent }).boxed(),
        );
    }
    if kinds.latency_spike {
        options.push(
            (node(), 10u32..=300).prop_map(|(node, extra_ms)| WindowFault::LatencySpike { node, extra_ms }).boxed(),
        );
    }
    assert!(!options.is_empty(), "no fault kind fits a cluster of {servers} servers");
    proptest::strategy::Union::new(options).boxed()
}

/// Strategy: up to `space.max_faults` fault windows starting before `horizon_ms`.
pub fn fault_schedule(servers: u32, horizon_ms: u32, space: &CaseSpace) -> BoxedStrategy<Vec<FaultWindow>> {
    let fault = window_fault_with_sides(servers, space.fault_kinds, space.min_partition_side, space.partition_clients);
    let window = (0..horizon_ms.max(1), space.min_window_ms..=space.max_window_ms.max(space.min_window_ms), fault)
        .prop_map(|(start_ms, duration_ms, fault)| FaultWindow { start_ms, duration_ms, fault });
    proptest::collection::vec(window, 0..=space.max_faults).boxed()
}

/// Strategy: a workload of 1 to `space.max_ops` operations over `keys` keys.
pub fn workload(keys: u32, space: &CaseSpace) -> BoxedStrategy<WorkloadPlan> {
    assert!(keys > 0 && keys <= 256, "between 1 and 256 keys");
    let key = 0..keys as u8;
    let op = prop_oneof![
        key.clone().prop_map(|key| PlannedOp::Read { key }),
        key.clone().prop_map(|key| PlannedOp::Write { key }),
        (key, 0u8..3).prop_map(|(key, back)| PlannedOp::Cas { key, back }),
    ];
    let (think_min, think_max) = space.think_ms;
    (proptest::collection::vec(op, 1..=space.max_ops.max(1)), think_min..=think_max.max(think_min))
        .prop_map(|(ops, think_ms)| WorkloadPlan { ops, think_ms })
        .boxed()
}

/// Strategy: whole test cases for a cluster of `servers` servers whose faults start before `horizon_ms`.
pub fn test_cases(servers: u32, keys: u32, horizon_ms: u32, space: &CaseSpace) -> BoxedStrategy<TestCase> {
    let network = if space.vary_network {
        network_conditions(space.max_loss_percent, space.max_duplicate_percent)
    } else {
        Just(NetworkConditions::default()).boxed()
    };
    (any::<u64>(), network, fault_schedule(servers, horizon_ms, space), workload(keys, space))
        .prop_map(|(seed, network, faults, workload)| TestCase { seed, network, faults, workload })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_names_a_value_really_written_and_values_are_unique() {
        let plan = WorkloadPlan {
            ops: vec![
                PlannedOp::Write { key: 0 },
                PlannedOp::Write { key: 0 },
                PlannedOp::Cas { key: 0, back: 1 },
                PlannedOp::Cas { key: 0, back: 0 },
                PlannedOp::Read { key: 0 },
            ],
            think_ms: 10,
        };
        let per_client = plan.ops_per_client(OpMix::CasRegister, 2, 1);
        assert_eq!(per_client[0].len(), 3);
        assert_eq!(per_client[1].len(), 2);
        assert_eq!(per_client[0][1], Op::new("cas", None, Value::List(vec![Value::Int(1), Value::Int(3)])));
        assert_eq!(per_client[1][1], Op::new("cas", None, Value::List(vec![Value::Int(3), Value::Int(4)])));
        assert_eq!(per_client[0][2], Op::new("read", None, Value::Nil));
        let set = plan.ops_per_client(OpMix::Set, 1, 3);
        assert_eq!(set[0][2], Op::new("add", Some(Value::Int(0)), Value::Int(3)));
    }

    #[test]
    fn test_cases_round_trip_through_json() {
        let case = TestCase {
            seed: 7,
            network: NetworkConditions::default(),
            faults: vec![FaultWindow {
                start_ms: 5,
                duration_ms: 9,
                fault: WindowFault::Partition { side: vec![1], clients: vec![] },
            }],
            workload: WorkloadPlan { ops: vec![PlannedOp::Read { key: 0 }], think_ms: 3 },
        };
        assert_eq!(TestCase::from_json(&case.to_json()), Ok(case));
        assert!(TestCase::from_json("{").is_err());
    }

    proptest! {
        #[test]
        fn drawn_fault_windows_only_name_existing_servers(
            windows in fault_schedule(3, 1_000, &CaseSpace::default())
        ) {
            prop_assert!(windows.len() <= CaseSpace::default().max_faults);
            prop_assert!(crate::testing::schedule::validate(&windows, 3).is_ok());
            for window in &windows {
                if let WindowFault::Partition { side, .. } = &window.fault {
                    prop_assert!(!side.is_empty() && side.len() < 3);
                }
            }
        }
    }
}
