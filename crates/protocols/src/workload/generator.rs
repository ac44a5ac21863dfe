//! Operation generators: what a client asks next, for each workload kind, with values unique across
//! the whole run (so checkers can tell every write apart and take their fast paths).

use crate::spec::{WorkloadKind, WorkloadSpec};
use detsim_core::history::{Op, Value};
use detsim_core::SimRng;
use rand::RngExt;

/// Operations a generator draws beyond its workload's standard ones, for protocols whose objects
/// support more than the shared workloads ask (the CRDTs). `Standard` draws exactly what it always
/// did, so existing runs keep their traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpMix {
    #[default]
    Standard,
    /// Counter: half the updates are decrements (`add` with a negative amount), for PN-counters.
    CounterWithDecrements,
    /// Set: updates add or remove an element drawn from `0..elements`, so elements are added
    /// concurrently, removed, and added again (what an observed-remove set is about).
    SetWithRemoves { elements: i64 },
}

/// Draws operations for one client. Written values are `client_index + 1 + clients * n` for the n-th
/// value this client writes, so no two writes in a run share a value.
#[derive(Clone, Debug)]
pub struct OpGenerator {
    kind: WorkloadKind,
    keys: usize,
    read_fraction: f64,
    client_index: u64,
    clients: u64,
    next_value: u64,
    /// The last value this client saw per key (written or read), so cas has a fair chance to succeed.
    last_seen: Vec<Value>,
    mix: OpMix,
}

/// Most micro-ops in one generated transaction.
pub const MAX_TXN_MICRO_OPS: usize = 4;

impl OpGenerator {
    pub fn new(spec: &WorkloadSpec, client_index: usize) -> Self {
        assert!(client_index < spec.clients.max(1), "client index {client_index} within {} clients", spec.clients);
        let keys = spec.keys.max(1);
        OpGenerator {
            kind: spec.kind,
            keys,
            read_fraction: spec.read_fraction.clamp(0.0, 1.0),
            client_index: client_index as u64,
            clients: spec.clients.max(1) as u64,
            next_value: 0,
            last_seen: vec![Value::Nil; keys],
            mix: OpMix::Standard,
        }
    }

    /// The same generator drawing `mix`.
    pub fn with_mix(mut self, mix: OpMix) -> Self {
        if let OpMix::SetWithRemoves { elements } = mix {
            assert!(elements >= 1, "a set mix needs at least one element");
        }
        self.mix = mix;
        self
    }

    /// Moves value numbering past every value an earlier life of this client (before a restart)
    /// could have used.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.next_value = epoch << 32;
    }

    /// A value no other write of the run uses.
    pub fn fresh_value(&mut self) -> i64 {
        let value = self.client_index + 1 + self.clients * self.next_value;
        self.next_value += 1;
        i64::try_from(value).expect("fewer than 2^63 written values")
    }

    fn key(&self, rng: &mut SimRng) -> usize {
        rng.random_range(0..self.keys)
    }

    /// Notes what a completed operation showed, to aim later cas operations at a current value.
    pub fn observe(&mut self, op: &Op) {
        let Some(Value::Int(key)) = op.key else { return };
        let Some(slot) = usize::try_from(key).ok().and_then(|k| self.last_seen.get_mut(k)) else { return };
        match op.f.as_str() {
            "read" | "write" => *slot = op.value.clone(),
            "cas" => {
                if let Some([_, to]) = op.value.as_list() {
                    *slot = to.clone();
                }
            }
            _ => {}
        }
    }

    /// From now on draw only reads (read-only transactions for the transactional kinds).
    pub fn reads_only(&mut self) {
        self.read_fraction = 1.0;
    }

    /// The next operation, as invoked (reads carry `nil`), or `None` for the `none` workload.
    pub fn next_op(&mut self, rng: &mut SimRng) -> Option<Op> {
        let read = rng.random_bool(self.read_fraction);
        let key = self.key(rng);
        let key_value = Some(Value::Int(key as i64));
        let op = match self.kind {
            WorkloadKind::None => return None,
            WorkloadKind::Register => {
                if read {
                    Op::new("read", key_value, Value::Nil)
                } else if rng.random_bool(0.5) {
                    let value = self.fresh_value();
                    Op::new("write", key_value, Value::Int(value))
                } else {
                    let from = self.last_seen[key].clone();
                    let to = self.fresh_value();
                    Op::new("cas", key_value, Value::List(vec![from, Value::Int(to)]))
                }
            }
            WorkloadKind::KeyValue => {
                if read {
                    Op::new("get", key_value, Value::Nil)
                } else if rng.random_bool(0.5) {
                    let value = self.fresh_value();
                    Op::new("put", key_value, Value::Str(value.to_string()))
                } else {
                    // Appended strings start with a separator so the value stays readable: "3,8,13".
                    let value = self.fresh_value();
                    Op::new("append", key_value, Value::Str(format!(",{value}")))
                }
            }
            WorkloadKind::Counter => {
                if read {
                    Op::new("read", key_value, Value::Nil)
                } else if self.mix == OpMix::CounterWithDecrements && rng.random_bool(0.5) {
                    Op::new("add", key_value, Value::Int(-rng.random_range(1..=3)))
                } else {
                    Op::new("add", key_value, Value::Int(rng.random_range(1..=3)))
                }
            }
            WorkloadKind::Set => {
                if read {
                    Op::new("read", key_value, Value::Nil)
                } else if let OpMix::SetWithRemoves { elements } = self.mix {
                    let f = if rng.random_bool(0.5) { "add" } else { "remove" };
                    Op::new(f, key_value, Value::Int(rng.random_range(0..elements)))
                } else {
                    let value = self.fresh_value();
                    Op::new("add", key_value, Value::Int(value))
                }
            }
            WorkloadKind::ListAppend | WorkloadKind::RwRegister => {
                let count = rng.random_range(1..=MAX_TXN_MICRO_OPS);
                let write_kind = if self.kind == WorkloadKind::ListAppend { "append" } else { "w" };
                let micro_ops = (0..count)
                    .map(|_| {
                        let key = Value::Int(self.key(rng) as i64);
                        if rng.random_bool(self.read_fraction) {
                            Value::List(vec![Value::from("r"), key, Value::Nil])
                        } else {
                            let value = self.fresh_value();
                            Value::List(vec![Value::from(write_kind), key, Value::Int(value)])
                        }
                    })
                    .collect();
                Op::new("txn", None, Value::List(micro_ops))
            }
        };
        Some(op)
    }
}
