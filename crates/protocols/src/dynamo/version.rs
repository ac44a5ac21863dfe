//! Versions of a stored value: a last-writer-wins timestamp, and optionally a vector clock (Dynamo
//! §4.4) so that concurrent writes are kept side by side as siblings instead of one silently losing.

use detsim_core::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How replicas order versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Versioning {
    /// The write with the highest coordinator timestamp wins (Cassandra-style); clock skew can make
    /// an older write win.
    #[default]
    LastWriterWins,
    /// Vector clocks: a version that another dominates is dropped; concurrent ones stay as siblings,
    /// and a read resolves them deterministically (highest timestamp).
    VectorClock,
}

/// A write's timestamp: the coordinator's local clock, then its id and a counter to break ties, so no
/// two writes share a stamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub local_ns: i64,
    pub node: u32,
    pub counter: u64,
}

/// One version of a key's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Value,
    pub stamp: Stamp,
    /// Vector clock by coordinator id (empty under last-writer-wins).
    pub clock: BTreeMap<u32, u64>,
}

/// `a` happened before `b`: every entry of `a` is at most `b`'s, and they differ.
fn dominated(a: &BTreeMap<u32, u64>, b: &BTreeMap<u32, u64>) -> bool {
    a != b && a.iter().all(|(node, count)| b.get(node).is_some_and(|other| other >= count))
}

/// The versions that survive when a replica holding `local` learns `incoming`, in canonical order
/// (by stamp), so that replicas holding the same versions hold equal lists.
pub fn merge(versioning: Versioning, local: &[Versioned], incoming: &[Versioned]) -> Vec<Versioned> {
    let all = local.iter().chain(incoming);
    match versioning {
        Versioning::LastWriterWins => all.max_by_key(|v| v.stamp).cloned().into_iter().collect(),
        Versioning::VectorClock => {
            let candidates: Vec<&Versioned> = all.collect();
            let mut kept: Vec<Versioned> = Vec::new();
            for v in &candidates {
                if candidates.iter().any(|other| dominated(&v.clock, &other.clock)) {
                    continue;
                }
                // Equal clocks are the same version (a coordinator that lost its counter can reuse a
                // clock); keep the highest stamp of them, deterministically.
                match kept.iter_mut().find(|k| k.clock == v.clock) {
                    Some(k) if k.stamp < v.stamp => *k = (*v).clone(),
                    Some(_) => {}
                    None => kept.push((*v).clone()),
                }
            }
            kept.sort_by_key(|v| v.stamp);
            kept
        }
    }
}

/// What a read returns from a set of versions: the value with the highest stamp (nil when empty).
pub fn resolve(versions: &[Versioned]) -> Value {
    versions.iter().max_by_key(|v| v.stamp).map(|v| v.value.clone()).unwrap_or_default()
}

/// A vector clock that dominates every version in `versions`, with `node`'s entry set to `counter`.
pub fn next_clock(versions: &[Versioned], node: u32, counter: u64) -> BTreeMap<u32, u64> {
    let mut clock: BTreeMap<u32, u64> = BTreeMap::new();
    for v in versions {
        for (n, c) in &v.clock {
            let entry = clock.entry(*n).or_insert(0);
            *entry = (*entry).max(*c);
        }
    }
    let own = clock.entry(node).or_insert(0);
    *own = (*own).max(counter);
    clock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(value: i64, local_ns: i64, clock: &[(u32, u64)]) -> Versioned {
        Versioned {
            value: Value::Int(value),
            stamp: Stamp { local_ns, node: 0, counter: 0 },
            clock: clock.iter().copied().collect(),
        }
    }

    #[test]
    fn lww_keeps_the_highest_stamp() {
        let merged = merge(Versioning::LastWriterWins, &[version(1, 5, &[])], &[version(2, 3, &[])]);
        assert_eq!(merged, vec![version(1, 5, &[])]);
        assert_eq!(resolve(&merged), Value::Int(1));
    }

    #[test]
    fn vector_clocks_drop_dominated_versions_and_keep_concurrent_ones() {
        let old = version(1, 9, &[(0, 1)]);
        let newer = version(2, 1, &[(0, 2)]);
        let concurrent = version(3, 4, &[(1, 1)]);
        let merged = merge(Versioning::VectorClock, std::slice::from_ref(&old), std::slice::from_ref(&newer));
        assert_eq!(merged, vec![newer.clone()], "the causal successor wins despite a lower stamp");
        let merged = merge(Versioning::VectorClock, &merged, &[concurrent.clone(), old]);
        assert_eq!(merged, vec![newer.clone(), concurrent.clone()]);
        // Merge is commutative: the other order gives the same list.
        let reversed = merge(Versioning::VectorClock, std::slice::from_ref(&concurrent), std::slice::from_ref(&newer));
        assert_eq!(reversed, merged);
        assert_eq!(resolve(&merged), Value::Int(3));
        let next = next_clock(&merged, 0, 7);
        assert_eq!(next, [(0, 7), (1, 1)].into_iter().collect());
    }
}
