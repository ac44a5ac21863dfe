//! State-based CRDTs (Shapiro et al. 2011): the G-counter, the PN-counter and the observed-remove
//! set, each a join semi-lattice whose `merge` is commutative, associative and idempotent, so
//! replicas that have seen the same updates hold the same state whatever order, duplication or
//! grouping the gossip delivered them in. The bug switches break exactly one of those laws each.

use detsim_core::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Deliberate bugs in the merge functions and updates, each off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrdtMutants {
    /// Counters: merge adds the entries instead of taking their maximum (not idempotent: every
    /// repeated gossip counts the same increments again).
    pub merge_sum: bool,
    /// Counters: merge keeps whichever state has the larger total (not a join: concurrent
    /// increments at two replicas lose one side).
    pub merge_totals: bool,
    /// PN-counter: a decrement lowers the replica's own increment entry (a max-merge then brings
    /// the old, higher entry back from any replica that had not heard of the decrement).
    pub decrement_own_entry: bool,
    /// OR-set: remove hides the element itself rather than the add tags it saw, so a concurrent
    /// (or later) add elsewhere is dropped too.
    pub remove_by_element: bool,
    /// OR-set: merge unions the adds but keeps only its own tombstones, so removes never spread.
    pub merge_drops_tombstones: bool,
}

/// Grow-only counter: one entry per replica, each only ever raised by its replica; the value is
/// their sum, the merge their pointwise maximum (Shapiro et al., Specification 6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GCounter {
    entries: BTreeMap<u32, u64>,
}

impl GCounter {
    pub fn value(&self) -> u64 {
        // Saturating: only a mutant's merge can grow entries without bound.
        self.entries.values().fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// Replica `replica` counts `amount` more.
    pub fn increment(&mut self, replica: u32, amount: u64) {
        let entry = self.entries.entry(replica).or_insert(0);
        *entry = entry.saturating_add(amount);
    }

    fn lower(&mut self, replica: u32, amount: u64) {
        let entry = self.entries.entry(replica).or_insert(0);
        *entry = entry.saturating_sub(amount);
    }

    pub fn merge(&mut self, other: &GCounter, mutants: &CrdtMutants) {
        if mutants.merge_totals {
            // MUTANT: "the bigger counter wins", a last-writer-wins on totals.
            if other.value() > self.value() {
                *self = other.clone();
            }
            return;
        }
        for (replica, count) in &other.entries {
            let entry = self.entries.entry(*replica).or_insert(0);
            *entry = if mutants.merge_sum { entry.saturating_add(*count) } else { (*entry).max(*count) };
        }
    }
}

/// Counter with increments and decrements: two G-counters, increments and decrements; the value
/// is their difference (Shapiro et al., Specification 7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PnCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PnCounter {
    pub fn value(&self) -> i64 {
        let up = i64::try_from(self.increments.value()).unwrap_or(i64::MAX);
        let down = i64::try_from(self.decrements.value()).unwrap_or(i64::MAX);
        up.saturating_sub(down)
    }

    /// Replica `replica` adds `amount` (negative: a decrement).
    pub fn add(&mut self, replica: u32, amount: i64, mutants: &CrdtMutants) {
        let magnitude = amount.unsigned_abs();
        if amount >= 0 {
            self.increments.increment(replica, magnitude);
        } else if mutants.decrement_own_entry {
            // MUTANT: one vector, lowered in place; max-merge cannot tell a lowered entry from
            // an old one.
            self.increments.lower(replica, magnitude);
        } else {
            // A decrement is an increment of the other G-counter: both only grow, so merging by
            // maximum stays right.
            self.decrements.increment(replica, magnitude);
        }
    }

    pub fn merge(&mut self, other: &PnCounter, mutants: &CrdtMutants) {
        self.increments.merge(&other.increments, mutants);
        self.decrements.merge(&other.decrements, mutants);
    }
}

/// A unique tag of one add: the replica that made it and its count of adds so far.
pub type Tag = (u32, u64);

/// Observed-remove set (add wins): each add makes a unique tag; a remove tombstones the tags of the
/// element that the removing replica has seen; an element is in the set while one of its tags is
/// not tombstoned. An add concurrent with a remove survives it, because the remove could not have
/// seen its tag (Shapiro et al., Specification 15).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrSet {
    /// Add tags, by element.
    #[serde(with = "tagged")]
    adds: BTreeMap<Value, BTreeSet<Tag>>,
    tombstones: BTreeSet<Tag>,
    /// Adds made by each replica (the counter part of its tags).
    clock: BTreeMap<u32, u64>,
    /// Only with the `remove_by_element` mutant: elements removed as a whole.
    removed_elements: BTreeSet<Value>,
}

/// Serde for the element map: pairs, since JSON object keys would turn `Int` elements into strings.
mod tagged {
    use super::Tag;
    use detsim_core::Value;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::{BTreeMap, BTreeSet};

    pub fn serialize<S: Serializer>(map: &BTreeMap<Value, BTreeSet<Tag>>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<Value, BTreeSet<Tag>>, D::Error> {
        Ok(Vec::<(Value, BTreeSet<Tag>)>::deserialize(deserializer)?.into_iter().collect())
    }
}

impl OrSet {
    fn live(&self, element: &Value, tags: &BTreeSet<Tag>) -> bool {
        !self.removed_elements.contains(element) && tags.iter().any(|tag| !self.tombstones.contains(tag))
    }

    /// The elements, in order.
    pub fn elements(&self) -> Vec<Value> {
        self.adds.iter().filter(|(element, tags)| self.live(element, tags)).map(|(e, _)| e.clone()).collect()
    }

    pub fn contains(&self, element: &Value) -> bool {
        self.adds.get(element).is_some_and(|tags| self.live(element, tags))
    }

    pub fn add(&mut self, replica: u32, element: Value, mutants: &CrdtMutants) {
        let count = self.clock.entry(replica).or_insert(0);
        *count += 1;
        let tag = (replica, *count);
        if mutants.remove_by_element {
            // Re-adding here undoes the local removal; other replicas' removals still hide it.
            self.removed_elements.remove(&element);
        }
        self.adds.entry(element).or_default().insert(tag);
    }

    pub fn remove(&mut self, element: &Value, mutants: &CrdtMutants) {
        if mutants.remove_by_element {
            // MUTANT: the element is gone for good, whatever adds this replica never saw.
            self.removed_elements.insert(element.clone());
            return;
        }
        // Only the tags seen here: an add this replica has not heard of survives the remove.
        if let Some(tags) = self.adds.get(element) {
            self.tombstones.extend(tags.iter().copied());
        }
    }

    pub fn merge(&mut self, other: &OrSet, mutants: &CrdtMutants) {
        for (element, tags) in &other.adds {
            self.adds.entry(element.clone()).or_default().extend(tags.iter().copied());
        }
        if !mutants.merge_drops_tombstones {
            self.tombstones.extend(other.tombstones.iter().copied());
        }
        for (replica, count) in &other.clock {
            let entry = self.clock.entry(*replica).or_insert(0);
            *entry = (*entry).max(*count);
        }
        self.removed_elements.extend(other.removed_elements.iter().cloned());
    }
}

/// The replicated object under one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Crdt {
    GCounter(GCounter),
    PnCounter(PnCounter),
    OrSet(OrSet),
}

impl Crdt {
    /// What a read returns: the count, or the elements in order.
    pub fn read(&self) -> Value {
        match self {
            Crdt::GCounter(counter) => Value::Int(i64::try_from(counter.value()).unwrap_or(i64::MAX)),
            Crdt::PnCounter(counter) => Value::Int(counter.value()),
            Crdt::OrSet(set) => Value::List(set.elements()),
        }
    }

    /// Merges `other` into this one. Both are the same type (one protocol instance replicates one
    /// type); a mismatch is a bug.
    pub fn merge(&mut self, other: &Crdt, mutants: &CrdtMutants) {
        match (self, other) {
            (Crdt::GCounter(mine), Crdt::GCounter(theirs)) => mine.merge(theirs, mutants),
            (Crdt::PnCounter(mine), Crdt::PnCounter(theirs)) => mine.merge(theirs, mutants),
            (Crdt::OrSet(mine), Crdt::OrSet(theirs)) => mine.merge(theirs, mutants),
            (mine, theirs) => panic!("merging a {mine:?} with a {theirs:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORRECT: CrdtMutants = CrdtMutants {
        merge_sum: false,
        merge_totals: false,
        decrement_own_entry: false,
        remove_by_element: false,
        merge_drops_tombstones: false,
    };

    #[test]
    fn g_counter_merge_is_a_join() {
        let (mut a, mut b) = (GCounter::default(), GCounter::default());
        a.increment(0, 3);
        b.increment(1, 2);
        let mut ab = a.clone();
        ab.merge(&b, &CORRECT);
        let mut ba = b.clone();
        ba.merge(&a, &CORRECT);
        assert_eq!(ab, ba, "commutative");
        assert_eq!(ab.value(), 5);
        let again = ab.clone();
        ab.merge(&again, &CORRECT);
        assert_eq!(ab.value(), 5, "idempotent");
        let mut summing = again.clone();
        summing.merge(&again, &CrdtMutants { merge_sum: true, ..CORRECT });
        assert_eq!(summing.value(), 10, "the sum mutant double counts");
    }

    #[test]
    fn pn_counter_decrements_survive_merges() {
        let (mut a, mut b) = (PnCounter::default(), PnCounter::default());
        a.add(0, 5, &CORRECT);
        b.merge(&a, &CORRECT);
        b.add(1, -2, &CORRECT);
        a.merge(&b, &CORRECT);
        assert_eq!((a.value(), b.value()), (3, 3));
        // The mutant lowers an entry that an older copy still holds high.
        let (mut c, mut d) = (PnCounter::default(), PnCounter::default());
        let bad = CrdtMutants { decrement_own_entry: true, ..CORRECT };
        c.add(0, 5, &bad);
        d.merge(&c, &bad);
        c.add(0, -2, &bad);
        c.merge(&d, &bad);
        assert_eq!(c.value(), 5, "the old entry came back");
    }

    #[test]
    fn or_set_add_wins_over_a_concurrent_remove() {
        let (mut a, mut b) = (OrSet::default(), OrSet::default());
        let x = Value::Int(7);
        a.add(0, x.clone(), &CORRECT);
        b.merge(&a, &CORRECT);
        // Concurrently: a removes x (seeing its own tag), b adds x again.
        a.remove(&x, &CORRECT);
        b.add(1, x.clone(), &CORRECT);
        a.merge(&b, &CORRECT);
        b.merge(&a, &CORRECT);
        assert!(a.contains(&x) && b.contains(&x), "the concurrent add survives");
        assert_eq!(a, b);
        // A remove that saw every add wins.
        a.remove(&x, &CORRECT);
        b.merge(&a, &CORRECT);
        assert!(!b.contains(&x));
        assert_eq!(b.elements(), Vec::<Value>::new());
    }

    #[test]
    fn or_set_state_round_trips_through_json() {
        let mut set = OrSet::default();
        set.add(2, Value::Int(4), &CORRECT);
        set.remove(&Value::Int(4), &CORRECT);
        set.add(2, Value::Int(5), &CORRECT);
        let back: OrSet = serde_json::from_str(&serde_json::to_string(&set).expect("serialises")).expect("parses");
        assert_eq!(back, set);
    }
}
