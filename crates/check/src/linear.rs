//! Linearizability: Wing & Gong's search with Lowe's memoisation (a cache of linearized-set and
//! model-state pairs) over a dancing-links list of call and return entries, per key (P-compositionality).

use crate::model::{compile, extends, Model, ModelOp, StateTable, Step};
use crate::ops::{operations, HistoryError, Operation};
use crate::verdict::{Counterexample, PlacedOp, Validity, Verdict};
use detsim_core::history::{History, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Options of the linearizability and sequential-consistency checkers.
#[derive(Clone, Debug)]
pub struct LinearizabilityOptions {
    /// Check each key on its own (P-compositionality). Linearizability is compositional, so the
    /// verdict is the same either way; partitioning is much faster.
    pub partition: bool,
    /// Porcupine's stricter reading of a failed cas: it ran, saw a value other than `from`, and must
    /// fit the order. Off by default (Jepsen/Knossos: a failed op did not happen).
    pub strict_cas: bool,
    /// Give up with verdict "unknown" after this much wall time.
    pub time_budget: Option<Duration>,
    /// The value of every object before the history starts (a register: nil; a kv key: "").
    pub initial: Value,
    /// Give up with verdict "unknown" when the memo cache holds this many entries (and, whatever
    /// this says, when it would take more than `max_memory_bytes`).
    pub max_memory_entries: usize,
    /// Give up with verdict "unknown" when the memo cache or the table of model states would take
    /// more than this many bytes (1 GiB unless told otherwise).
    pub max_memory_bytes: usize,
    /// Not partitioned, on a history of several keys: how many steps the whole-history search may
    /// take before the verdict is settled key by key and then checked on the whole history (see
    /// [`check_linearizable`]). 0 settles it key by key at once.
    pub whole_search_steps: u64,
}

impl Default for LinearizabilityOptions {
    fn default() -> Self {
        LinearizabilityOptions {
            partition: true,
            strict_cas: false,
            time_budget: None,
            initial: Value::Nil,
            max_memory_entries: 50_000_000,
            max_memory_bytes: Budget::DEFAULT_MAX_BYTES,
            whole_search_steps: 500_000,
        }
    }
}

/// A fixed-size set of operation numbers, used as the "linearized" set in cache keys, with an
/// incrementally maintained Zobrist hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BitSet {
    words: Box<[u64]>,
    hash: u64,
}

/// A fixed pseudo-random 64-bit number per bit (SplitMix64), so that set hashes update in O(1).
fn zobrist(bit: usize) -> u64 {
    let mut z = (bit as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl BitSet {
    pub fn new(size: usize) -> Self {
        BitSet { words: vec![0; size.div_ceil(64)].into_boxed_slice(), hash: 0 }
    }
    pub fn set(&mut self, bit: usize) {
        debug_assert!(self.words[bit / 64] & (1 << (bit % 64)) == 0, "bit set twice");
        self.words[bit / 64] |= 1 << (bit % 64);
        self.hash ^= zobrist(bit);
    }
    pub fn clear(&mut self, bit: usize) {
        debug_assert!(self.words[bit / 64] & (1 << (bit % 64)) != 0, "bit cleared twice");
        self.words[bit / 64] &= !(1 << (bit % 64));
        self.hash ^= zobrist(bit);
    }
    pub fn contains(&self, bit: usize) -> bool {
        self.words[bit / 64] & (1 << (bit % 64)) != 0
    }
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

/// Lowe's memo: the set of (linearized set, model state) configurations already explored. Sets
/// live in one flat arena; a hash map from the combined hash chains entries with equal hashes.
pub(crate) struct ConfigCache {
    words_per_entry: usize,
    arena: Vec<u64>,
    states: Vec<u32>,
    lasts: Vec<u32>,
    chain: Vec<u32>,
    heads: rustc_hash::FxHashMap<u64, u32>,
}

impl ConfigCache {
    const END: u32 = u32::MAX;

    pub fn new(words_per_entry: usize) -> Self {
        ConfigCache {
            words_per_entry,
            arena: Vec::new(),
            states: Vec::new(),
            lasts: Vec::new(),
            chain: Vec::new(),
            heads: rustc_hash::FxHashMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Empties the cache for sets of `words_per_entry` words, keeping its allocations.
    pub fn reset(&mut self, words_per_entry: usize) {
        self.words_per_entry = words_per_entry;
        self.arena.clear();
        self.states.clear();
        self.lasts.clear();
        self.chain.clear();
        self.heads.clear();
    }

    /// Bytes one entry takes, roughly (for the memory budget).
    pub fn entry_bytes(&self) -> usize {
        self.words_per_entry * 8 + 4 + 4 + 4 + 16
    }

    /// Adds the configuration; false when it was already there. `last` is the op placed last when
    /// the search orders ops by key (see `KeyOrder`), since it decides which ops may follow; 0
    /// otherwise.
    pub fn insert(&mut self, set: &BitSet, state: u32, last: u32) -> bool {
        let key = set.hash
            ^ u64::from(state).wrapping_mul(0xD6E8_FEB8_6659_FD93)
            ^ u64::from(last).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let head = self.heads.get(&key).copied().unwrap_or(Self::END);
        let mut cursor = head;
        while cursor != Self::END {
            let index = cursor as usize;
            let start = index * self.words_per_entry;
            if self.states[index] == state
                && self.lasts[index] == last
                && self.arena[start..start + self.words_per_entry] == *set.words()
            {
                return false;
            }
            cursor = self.chain[index];
        }
        let index = u32::try_from(self.states.len()).expect("fewer than 2^32 cache entries");
        self.arena.extend_from_slice(set.words());
        self.states.push(state);
        self.lasts.push(last);
        self.chain.push(head);
        self.heads.insert(key, index);
        true
    }
}

/// A budget: wall time, cache entries and bytes.
pub(crate) struct Budget {
    deadline: Option<Instant>,
    max_entries: usize,
    max_bytes: usize,
    ticks: u32,
}

impl Budget {
    /// Memory for the memo and for the model states is each capped at this many bytes unless the
    /// options say otherwise, whatever the entry limit says.
    pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

    pub fn new(time_budget: Option<Duration>, max_entries: usize, max_bytes: usize) -> Self {
        Budget { deadline: time_budget.map(|budget| Instant::now() + budget), max_entries, max_bytes, ticks: 0 }
    }

    /// The entry limit for a cache whose entries take `entry_bytes` each.
    pub fn entry_limit(&self, entry_bytes: usize) -> usize {
        self.max_entries.min(self.max_bytes / entry_bytes.max(1))
    }

    /// `Some(reason)` when the budget is spent. Reads the clock every 1024 calls.
    pub fn spent(&mut self, entries: usize, entry_limit: usize, table_bytes: usize) -> Option<String> {
        if entries > entry_limit {
            return Some(format!("memory budget spent: {entries} cache entries"));
        }
        if table_bytes > self.max_bytes {
            return Some(format!("memory budget spent: {table_bytes} bytes of model states"));
        }
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(1024) {
            if let Some(deadline) = self.deadline {
                if Instant::now() >= deadline {
                    return Some("time budget spent before a verdict".into());
                }
            }
        }
        None
    }
}

/// The outcome of one search.
pub(crate) enum SearchOutcome {
    /// Linearizable: the ops placed, in order (unknown-outcome ops may be missing).
    Valid {
        order: Vec<usize>,
    },
    Invalid {
        prefix: Vec<(usize, u32)>,
        state: u32,
        unplaceable: usize,
    },
    Unknown(String),
    OutOfSteps,
}

/// The operations a search orders: model ops with their call and return positions.
pub(crate) struct SearchOp {
    /// Index into the history's operations.
    pub op_index: usize,
    pub model_op: ModelOp,
    pub call: usize,
    /// `usize::MAX` when the outcome is unknown.
    pub ret: usize,
}

/// Compiles a history's operations for `model`; dropped ops (failed, unknown reads, unknown writes
/// nobody could have seen) are left out.
pub(crate) fn compile_all(
    history: &History,
    ops: &[Operation],
    model: Model,
    strict_cas: bool,
) -> Result<Vec<SearchOp>, HistoryError> {
    let mut compiled = Vec::new();
    for op in ops {
        if let Some(model_op) = compile(model, op, strict_cas, history)? {
            let ret = if model_op.required { op.return_position() } else { usize::MAX };
            compiled.push(SearchOp { op_index: op.id, model_op, call: op.invoke_index, ret });
        }
    }
    if matches!(model, Model::Register | Model::CasRegister) {
        drop_unseen_unknown_writes(&mut compiled);
    }
    Ok(compiled)
}

/// Drops the unknown-outcome writes and cas ops of a register whose written value no read returned
/// and no cas expected. Such an op never helps: in any linearization that places it, the stretch
/// until the next write holds a value nothing compares equal to, so it holds no read and no
/// successful cas; taking the op out leaves the previous value there instead, which the writes,
/// reads and cas ops elsewhere never notice. (A strict failed cas does notice, since it needs the
/// value to differ: keys with one are left alone.) Timeouts under a crash or partition leave many
/// such writes, and each one otherwise doubles the configurations to search.
fn drop_unseen_unknown_writes(compiled: &mut Vec<SearchOp>) {
    // (key, value) pairs some read returned or some cas expected; keys with a strict failed cas.
    let mut seen: BTreeSet<(&Option<Value>, &Value)> = BTreeSet::new();
    let mut strict_failed_cas: BTreeSet<&Option<Value>> = BTreeSet::new();
    for op in compiled.iter() {
        let key = &op.model_op.key;
        match &op.model_op.step {
            Step::Read(value) | Step::Cas { from: value, .. } => {
                seen.insert((key, value));
            }
            Step::CasFailed { .. } => {
                strict_failed_cas.insert(key);
            }
            _ => {}
        }
    }
    let unseen: Vec<bool> = compiled
        .iter()
        .map(|op| match &op.model_op.step {
            Step::Write(written) | Step::Cas { to: written, .. } => {
                let key = &op.model_op.key;
                !op.model_op.required && !strict_failed_cas.contains(key) && !seen.contains(&(key, written))
            }
            _ => false,
        })
        .collect();
    let mut unseen = unseen.into_iter();
    compiled.retain(|_| !unseen.next().expect("one flag per op"));
}

/// Wing & Gong / Lowe search over one partition. Entries are calls and returns sorted by position
/// in a dancing-links list; the ops that may go next are the calls before the first return still in
/// the list, tried in order of their calls. An unknown-outcome op's return lies after every other entry, and the search
/// succeeds as soon as every required op is linearized (unknown ones may be left out).
///
/// `step_limit` bounds the number of search steps; past it the outcome is `OutOfSteps`.
pub(crate) fn search(
    ops: &[SearchOp],
    table: &mut StateTable,
    cache: &mut ConfigCache,
    budget: &mut Budget,
    step_limit: u64,
) -> SearchOutcome {
    let count = ops.len();
    // Entry 2i is op i's call, 2i + 1 its return; `order` sorts them; the list links them.
    let mut order: Vec<usize> = (0..2 * count).collect();
    let position = |entry: usize| -> (usize, usize) {
        let op = &ops[entry / 2];
        if entry.is_multiple_of(2) {
            (op.call, entry)
        } else {
            (op.ret, entry)
        }
    };
    order.sort_by_key(|&entry| position(entry));
    let head = 2 * count;
    let none = usize::MAX;
    let mut next = vec![none; 2 * count + 1];
    let mut prev = vec![none; 2 * count + 1];
    let mut last = head;
    for &entry in &order {
        next[last] = entry;
        prev[entry] = last;
        last = entry;
    }
    let mut required_left = ops.iter().filter(|op| op.model_op.required).count();
    let mut linearized = BitSet::new(count);
    let growth = GrowthPruning::new(ops);
    let key_order = KeyOrder::new(ops);
    cache.reset(count.div_ceil(64));
    let entry_limit = budget.entry_limit(cache.entry_bytes());
    // Candidate lists of every open configuration, one after the other.
    let mut candidates: Vec<usize> = Vec::new();
    // A frame: where its candidates start, the next one to try, and, once one is placed, that op and
    // the state before it. A read-only op (a read that matched) is never worth undoing for another
    // choice: any order that places it later can place it now instead, since its call precedes every
    // pending return and it leaves every state it applies to unchanged. So backtracking pops through
    // such ops. (An op that merely left *this* state unchanged, like a write of the current value,
    // does not qualify: placed later it could restore a value overwritten in between.)
    struct Frame {
        start: usize,
        next_try: usize,
        placed: usize,
        state_before: u32,
    }
    let mut frames: Vec<Frame> = Vec::new();
    let mut state = StateTable::INITIAL;
    // The longest dead-end prefix found: (placed op, state after) pairs, the state, the blocked op.
    type Best = (Vec<(usize, u32)>, u32, usize);
    let mut best: Option<Best> = None;
    let mut steps = 0u64;
    let mut open_new = true;
    loop {
        if required_left == 0 {
            return SearchOutcome::Valid { order: frames.iter().map(|frame| frame.placed).collect() };
        }
        if open_new {
            // Collect the window of the new configuration.
            let start = candidates.len();
            let mut entry = next[head];
            while entry != none && entry % 2 == 0 {
                candidates.push(entry / 2);
                entry = next[entry];
            }
            let just_placed = frames.last().map(|frame| frame.placed);
            let earliest_call = if next[head] == none { usize::MAX } else { ops[next[head] / 2].call };
            let at = SearchPoint { state, linearized: &linearized, ops, table };
            if growth.dead_end(&candidates[start..], &at)
                || just_placed.is_some_and(|placed| growth.dead_end_after(placed, earliest_call, &at))
            {
                candidates.truncate(start);
            }
            frames.push(Frame { start, next_try: start, placed: none, state_before: state });
            open_new = false;
        }
        steps += 1;
        if steps > step_limit {
            return SearchOutcome::OutOfSteps;
        }
        if let Some(reason) = budget.spent(cache.len(), entry_limit, table.bytes()) {
            return SearchOutcome::Unknown(reason);
        }
        let last = frames.len().checked_sub(2).map(|parent| frames[parent].placed);
        let frame = frames.last_mut().expect("the search always has an open frame here");
        let end = candidates.len();
        let mut chosen = None;
        while frame.next_try < end {
            let op = candidates[frame.next_try];
            frame.next_try += 1;
            if last.is_some_and(|last| !key_order.may_follow(ops, last, op)) {
                continue;
            }
            let op_number = u32::try_from(op).expect("fewer than 2^32 ops");
            let Some(new_state) = table.step(state, op_number, &ops[op].model_op) else { continue };
            linearized.set(op);
            if cache.insert(&linearized, new_state, key_order.memo_tag(op)) {
                chosen = Some((op, new_state));
                break;
            }
            linearized.clear(op);
        }
        if let Some((op, new_state)) = chosen {
            frame.placed = op;
            frame.state_before = state;
            state = new_state;
            for lifted in [2 * op, 2 * op + 1] {
                next[prev[lifted]] = next[lifted];
                if next[lifted] != none {
                    prev[next[lifted]] = prev[lifted];
                }
            }
            if ops[op].model_op.required {
                required_left -= 1;
            }
            open_new = true;
            continue;
        }
        // No candidate fits: this configuration is a dead end.
        let depth = frames.len() - 1;
        if best.as_ref().is_none_or(|(prefix, _, _)| depth > prefix.len()) {
            let placed: Vec<(usize, u32)> = frames[..depth]
                .iter()
                .enumerate()
                .map(|(i, f)| (f.placed, frames.get(i + 1).map_or(state, |g| g.state_before)))
                .collect();
            // The op that cannot be placed: the first pending return.
            let mut entry = next[head];
            while entry != none && entry % 2 == 0 {
                entry = next[entry];
            }
            let blocked = if entry == none { 0 } else { entry / 2 };
            best = Some((placed, state, blocked));
        }
        loop {
            let dead = frames.pop().expect("a dead-end frame exists");
            candidates.truncate(dead.start);
            let Some(parent) = frames.last_mut() else {
                let (prefix, state, unplaceable) = best.expect("a best prefix was recorded just above");
                return SearchOutcome::Invalid { prefix, state, unplaceable };
            };
            let undone = parent.placed;
            let state_preserving = state == parent.state_before
                && ops[undone].model_op.step.is_read_only()
                && key_order.first_of_other_keys(&candidates[parent.start..dead.start], undone);
            state = parent.state_before;
            linearized.clear(undone);
            for lifted in [2 * undone + 1, 2 * undone] {
                next[prev[lifted]] = lifted;
                if next[lifted] != none {
                    prev[next[lifted]] = lifted;
                }
            }
            if ops[undone].model_op.required {
                required_left += 1;
            }
            parent.placed = none;
            if !state_preserving {
                break;
            }
            // The parent configuration is a dead end too: pop it as well.
        }
    }
}

/// A partial-order reduction for a search over several keys at once (`--no-partition`). Ops on
/// different keys commute, and two ops whose intervals overlap may go in either order, so swapping
/// such a pair where they sit side by side in a linearization gives another linearization. Sorting
/// by such swaps turns any linearization into one where an op on another key that could have gone
/// first never directly follows one with a higher number: the lexicographic normal form of the
/// Mazurkiewicz trace (Anisimov & Knuth, 1979), or near it. So the search only tries orders with
/// that property: of two overlapping ops on different keys it tries one order, not both. The memo
/// then keys configurations by their last op too, since that decides what may follow. (Only the
/// adjacent pairs are checked, so some orders outside the normal form are still tried; that costs
/// time, never a verdict.)
///
/// It costs the search one shortcut: a matched read is only "never worth undoing" when no op on
/// another key with a lower number stood beside it, since moving the read to the front of a
/// normal-form order must not put it right before such an op. With one key, nothing changes.
struct KeyOrder {
    /// A number per distinct key, per op; `None` when every op has the same key.
    key_ids: Option<Vec<u32>>,
}

impl KeyOrder {
    fn new(ops: &[SearchOp]) -> Self {
        let mut ids: BTreeMap<&Option<Value>, u32> = BTreeMap::new();
        let key_ids: Vec<u32> = ops
            .iter()
            .map(|op| {
                let next = u32::try_from(ids.len()).expect("fewer than 2^32 keys");
                *ids.entry(&op.model_op.key).or_insert(next)
            })
            .collect();
        KeyOrder { key_ids: (ids.len() > 1).then_some(key_ids) }
    }

    /// Whether `op` may be placed right after `last`: unless it is on another key, has a lower
    /// number, and could have gone before `last` (`last` had not returned when `op` was called).
    fn may_follow(&self, ops: &[SearchOp], last: usize, op: usize) -> bool {
        let Some(key_ids) = &self.key_ids else { return true };
        key_ids[op] == key_ids[last] || op > last || ops[last].ret < ops[op].call
    }

    /// What the memo must know of the last op placed.
    fn memo_tag(&self, op: usize) -> u32 {
        match self.key_ids {
            Some(_) => u32::try_from(op).expect("fewer than 2^32 ops"),
            None => 0,
        }
    }

    /// Whether no candidate beside `read` is on another key with a lower number (every candidate
    /// could have gone before or after `read`: both were called before any pending return).
    fn first_of_other_keys(&self, window: &[usize], read: usize) -> bool {
        let Some(key_ids) = &self.key_ids else { return true };
        window.iter().all(|&other| other > read || key_ids[other] == key_ids[read])
    }
}

/// Pruning for append-only growth: values only grow by appends, so a pending read of `v` while the
/// object holds `s` (not a prefix of `v`) needs a write or cas of a prefix of `v` that can still come
/// before the read (the last reset before the read must have written where `v` starts). When none is
/// left, the configuration is a dead end. Sound for every model: it only looks at reads of plain
/// values.
///
/// Two checks use it. Every new configuration checks the reads in its window; and after an op is
/// placed, the next `LOOKAHEAD_READS` pending reads of its key are checked too, however far ahead
/// of the window they lie. The second catches a wrong order of two appends as soon as it is made,
/// instead of when the read that tells them apart reaches the window, after other keys' ops have
/// been interleaved with every alternative.
struct GrowthPruning {
    /// For each read op: the write/cas ops on its key invoked before the read returned that wrote a
    /// prefix of what the read saw.
    resets_before: Vec<Option<Vec<usize>>>,
    /// A number per distinct key, per op.
    key_ids: Vec<usize>,
    /// Per key number: its required reads, by call.
    reads_by_key: Vec<Vec<usize>>,
    enabled: bool,
}

impl GrowthPruning {
    /// How many of a key's reads past the window one placement checks at most.
    const LOOKAHEAD_READS: usize = 32;

    fn new(ops: &[SearchOp]) -> Self {
        let enabled = ops.iter().any(|op| matches!(op.model_op.step, Step::Append(_)));
        let mut resets_before = vec![None; ops.len()];
        let mut key_ids = Vec::new();
        let mut reads_by_key: Vec<Vec<usize>> = Vec::new();
        if enabled {
            let mut ids: BTreeMap<&Option<Value>, usize> = BTreeMap::new();
            for op in ops {
                let next = ids.len();
                key_ids.push(*ids.entry(&op.model_op.key).or_insert(next));
            }
            let mut resets_by_key: Vec<Vec<(usize, &Value)>> = vec![Vec::new(); ids.len()];
            reads_by_key = vec![Vec::new(); ids.len()];
            let mut by_call: Vec<usize> = (0..ops.len()).collect();
            by_call.sort_by_key(|&i| ops[i].call);
            for &index in &by_call {
                match &ops[index].model_op.step {
                    Step::Write(written) | Step::Cas { to: written, .. } => {
                        resets_by_key[key_ids[index]].push((index, written));
                    }
                    Step::Read(_) if ops[index].model_op.required => reads_by_key[key_ids[index]].push(index),
                    _ => {}
                }
            }
            for (index, op) in ops.iter().enumerate() {
                if let (Step::Read(seen), true) = (&op.model_op.step, op.model_op.required) {
                    resets_before[index] = Some(
                        resets_by_key[key_ids[index]]
                            .iter()
                            .take_while(|&&(reset, _)| ops[reset].call < op.ret)
                            .filter(|&&(_, written)| extends(seen, written))
                            .map(|&(reset, _)| reset)
                            .collect(),
                    );
                }
            }
        }
        GrowthPruning { resets_before, key_ids, reads_by_key, enabled }
    }

    /// Whether a read in `window` can no longer be satisfied.
    fn dead_end(&self, window: &[usize], at: &SearchPoint<'_>) -> bool {
        self.enabled
            && window.iter().any(|&op| {
                self.resets_before[op].is_some()
                    && at
                        .table
                        .value_of(at.state, &at.ops[op].model_op.key)
                        .is_some_and(|current| self.stranded(op, current, at))
            })
    }

    /// Whether, `placed` having just been placed, a read of its key can no longer be satisfied.
    /// Every op called before `earliest_call` is linearized.
    fn dead_end_after(&self, placed: usize, earliest_call: usize, at: &SearchPoint<'_>) -> bool {
        if !self.enabled {
            return false;
        }
        let ops = at.ops;
        let Some(current) = at.table.value_of(at.state, &ops[placed].model_op.key) else { return false };
        let reads = &self.reads_by_key[self.key_ids[placed]];
        let first = reads.partition_point(|&read| ops[read].call < earliest_call);
        reads[first..]
            .iter()
            .filter(|&&read| !at.linearized.contains(read))
            .take(Self::LOOKAHEAD_READS)
            .any(|&read| self.stranded(read, current, at))
    }

    /// Whether `read`, while its key holds `current`, can no longer be satisfied: it saw a value
    /// that does not extend `current`, and every reset that could start that value again is placed.
    fn stranded(&self, read: usize, current: &Value, at: &SearchPoint<'_>) -> bool {
        let (Some(resets), Step::Read(seen)) = (&self.resets_before[read], &at.ops[read].model_op.step) else {
            return false;
        };
        !extends(seen, current) && resets.iter().all(|&reset| at.linearized.contains(reset))
    }
}

/// Where a search stands: its model state and linearized set, over its ops and state table.
struct SearchPoint<'a> {
    state: u32,
    linearized: &'a BitSet,
    ops: &'a [SearchOp],
    table: &'a StateTable,
}

/// Groups compiled ops by key (each group keeps history order), or one group when not partitioning.
pub(crate) fn partitions(compiled: Vec<SearchOp>, partition: bool) -> BTreeMap<Option<Value>, Vec<SearchOp>> {
    let mut groups: BTreeMap<Option<Value>, Vec<SearchOp>> = BTreeMap::new();
    for op in compiled {
        let key = if partition { op.model_op.key.clone() } else { None };
        groups.entry(key).or_default().push(op);
    }
    groups
}

/// Builds the counterexample of a failed search.
pub(crate) fn counterexample(
    ops: &[Operation],
    group: &[SearchOp],
    table: &StateTable,
    key: Option<Value>,
    prefix: Vec<(usize, u32)>,
    state: u32,
    unplaceable: usize,
) -> Counterexample {
    let blocked = &ops[group[unplaceable].op_index];
    let placed: Vec<usize> = prefix.iter().map(|&(local, _)| group[local].op_index).collect();
    let mut involved: Vec<Operation> = group
        .iter()
        .map(|search_op| &ops[search_op.op_index])
        .filter(|op| {
            op.id == blocked.id
                || (!placed.contains(&op.id) && op.invoke_index < blocked.return_position())
                || (placed.contains(&op.id) && !op.precedes(blocked))
        })
        .cloned()
        .collect();
    involved.sort_by_key(|op| op.id);
    Counterexample {
        key,
        prefix: prefix
            .iter()
            .map(|&(local, after)| PlacedOp {
                op: ops[group[local].op_index].clone(),
                state_after: table.describe(after),
            })
            .collect(),
        state: table.describe(state),
        unplaceable: blocked.clone(),
        involved,
    }
}

/// Checks that `history` is linearizable with respect to `model`.
///
/// Partitioned (the default), each key's operations are searched on their own. Not partitioned,
/// the whole history is one search; when that search runs past `whole_search_steps` steps on a
/// history of several keys, the verdict is settled key by key and then stated of the whole
/// history, without relying on linearizability being local:
/// - if one key's operations alone cannot be linearized, neither can the whole history (an order
///   of all operations would give one for them);
/// - if every key's can, their orders are merged into one order of all operations that respects
///   real time, and that order is replayed on the whole model and checked against real time.
///
/// A malformed history (a completion without an invocation, an unknown operation for the model, ...)
/// is an error, never a verdict.
pub fn check_linearizable(
    history: &History,
    model: Model,
    options: &LinearizabilityOptions,
) -> Result<Verdict, HistoryError> {
    let ops = operations(history)?;
    let compiled = compile_all(history, &ops, model, options.strict_cas)?;
    let mut verdict = Verdict::new("linearizable", Some(model.to_string()), ops.len());
    let mut search = GroupSearch {
        ops: &ops,
        table: StateTable::new(model, &options.initial),
        cache: ConfigCache::new(1),
        budget: Budget::new(options.time_budget, options.max_memory_entries, options.max_memory_bytes),
    };
    let keys: BTreeSet<&Option<Value>> = compiled.iter().map(|op| &op.model_op.key).collect();
    let outcome = if options.partition || keys.len() <= 1 {
        search.run(&partitions(compiled, options.partition), None)
    } else {
        let whole = partitions(compiled, false);
        match search.run(&whole, Some(options.whole_search_steps)) {
            GroupsOutcome::OutOfSteps => {
                let by_key = partitions(whole.into_values().flatten().collect(), true);
                let (outcome, note) = search.settle_by_key(&by_key, model, options);
                verdict.reason = note;
                outcome
            }
            outcome => outcome,
        }
    };
    match outcome {
        GroupsOutcome::Valid { .. } => {}
        GroupsOutcome::Invalid(counterexample) => {
            verdict.valid = Validity::Invalid;
            verdict.counterexample = Some(*counterexample);
        }
        GroupsOutcome::Unknown(reason) => {
            verdict.valid = Validity::Unknown;
            verdict.reason = Some(reason);
        }
        GroupsOutcome::OutOfSteps => unreachable!("only a search with a step cap runs out of steps"),
    }
    Ok(verdict)
}

/// The outcome of searching some groups of ops (keys, or the whole history).
enum GroupsOutcome {
    /// Every group is linearizable: one order per group (in the groups' order), as positions in
    /// the group.
    Valid {
        orders: Vec<Vec<usize>>,
    },
    Invalid(Box<Counterexample>),
    Unknown(String),
    /// The step cap was reached before a verdict.
    OutOfSteps,
}

/// What searching groups of ops shares: the history's operations, one state table and one memo
/// (cleared between groups, their allocations reused) and one budget.
struct GroupSearch<'a> {
    ops: &'a [Operation],
    table: StateTable,
    cache: ConfigCache,
    budget: Budget,
}

impl GroupSearch<'_> {
    /// Searches the groups round-robin with a step limit that grows fourfold each round, so that one
    /// hard group cannot hide an easy violation in another (a restart wastes at most a third).
    /// With `step_cap`, gives up with `OutOfSteps` once a round's limit would pass it.
    fn run(&mut self, groups: &BTreeMap<Option<Value>, Vec<SearchOp>>, step_cap: Option<u64>) -> GroupsOutcome {
        let mut pending: Vec<&Option<Value>> = groups.keys().collect();
        let mut orders: BTreeMap<&Option<Value>, Vec<usize>> = BTreeMap::new();
        let mut unknown_reason = None;
        let mut step_limit = 20_000u64;
        while !pending.is_empty() {
            if step_cap.is_some_and(|cap| step_limit > cap) {
                return GroupsOutcome::OutOfSteps;
            }
            let mut still_pending = Vec::new();
            for key in pending {
                let group = &groups[key];
                self.table.reset();
                match search(group, &mut self.table, &mut self.cache, &mut self.budget, step_limit) {
                    SearchOutcome::Valid { order } => {
                        orders.insert(key, order);
                    }
                    SearchOutcome::OutOfSteps => still_pending.push(key),
                    SearchOutcome::Invalid { prefix, state, unplaceable } => {
                        return GroupsOutcome::Invalid(Box::new(counterexample(
                            self.ops,
                            group,
                            &self.table,
                            key.clone(),
                            prefix,
                            state,
                            unplaceable,
                        )));
                    }
                    SearchOutcome::Unknown(reason) => {
                        // Go on: a later group may still prove the history invalid.
                        unknown_reason.get_or_insert(reason);
                    }
                }
            }
            pending = still_pending;
            step_limit = step_limit.saturating_mul(4);
        }
        match unknown_reason {
            Some(reason) => GroupsOutcome::Unknown(reason),
            None => GroupsOutcome::Valid { orders: orders.into_values().collect() },
        }
    }

    /// Settles a whole history's verdict from its keys' searches (see [`check_linearizable`]); the
    /// note says how.
    fn settle_by_key(
        &mut self,
        by_key: &BTreeMap<Option<Value>, Vec<SearchOp>>,
        model: Model,
        options: &LinearizabilityOptions,
    ) -> (GroupsOutcome, Option<String>) {
        let prelude = format!(
            "the whole-history search ran past {} steps, so each key was searched on its own",
            options.whole_search_steps
        );
        match self.run(by_key, None) {
            GroupsOutcome::Valid { orders } => {
                debug_assert_eq!(orders.len(), by_key.len(), "a valid outcome has every group's order");
                let orders: Vec<Vec<&SearchOp>> = by_key
                    .values()
                    .zip(&orders)
                    .map(|(group, order)| order.iter().map(|&local| &group[local]).collect())
                    .collect();
                let required = by_key.values().flatten().filter(|op| op.model_op.required).count();
                let checked = merge_orders(&orders)
                    .ok_or_else(|| "the keys' orders could not be merged in real-time order".to_string())
                    .and_then(|order| check_order(&order, required, model, &options.initial).map(|()| order.len()));
                match checked {
                    Ok(placed) => (
                        GroupsOutcome::Valid { orders: Vec::new() },
                        Some(format!(
                            "{prelude}; their orders merged into one order of {placed} operations, which was replayed \
                             on the whole model and respects real time"
                        )),
                    ),
                    Err(problem) => {
                        debug_assert!(false, "merging linearizations of independent keys failed: {problem}");
                        (GroupsOutcome::Unknown(format!("{prelude}, but {problem}")), None)
                    }
                }
            }
            GroupsOutcome::Invalid(counterexample) => {
                let key = counterexample.key.as_ref().map_or("?".to_string(), |key| key.to_string());
                let note = format!(
                    "{prelude}: the operations on key {key} alone cannot be linearized, so neither can the whole \
                     history (an order of all operations would give one for them)"
                );
                (GroupsOutcome::Invalid(counterexample), Some(note))
            }
            GroupsOutcome::Unknown(reason) => (GroupsOutcome::Unknown(format!("{prelude}; {reason}")), None),
            GroupsOutcome::OutOfSteps => unreachable!("a search without a step cap never runs out of steps"),
        }
    }
}

/// Merges one linearization per key into one order of all their ops that respects real time (an op
/// comes after every op that returned before it was called), taking each key's ops in their order.
/// Always possible when each order respects real time (Herlihy & Wing's locality argument);
/// `None` otherwise.
fn merge_orders<'a>(orders: &[Vec<&'a SearchOp>]) -> Option<Vec<&'a SearchOp>> {
    // The returns of the ops not merged yet, earliest first.
    let mut pending_returns: BTreeSet<(usize, usize)> =
        orders.iter().flatten().map(|op| (op.ret, op.op_index)).collect();
    let total = pending_returns.len();
    let mut heads = vec![0usize; orders.len()];
    let mut merged = Vec::with_capacity(total);
    while merged.len() < total {
        let earliest_return = pending_returns.first().map_or(usize::MAX, |&(ret, _)| ret);
        // The next op of some key that no op still to come returned before.
        let (_, key) = (0..orders.len())
            .filter_map(|key| orders[key].get(heads[key]).map(|op| (op.call, key)))
            .filter(|&(call, _)| call < earliest_return)
            .min()?;
        let op = orders[key][heads[key]];
        heads[key] += 1;
        pending_returns.remove(&(op.ret, op.op_index));
        merged.push(op);
    }
    Some(merged)
}

/// Checks an order of ops as a linearization of the whole history: each op at most once, every
/// one of the `required` ops there, no op after one that was called after it returned, and every
/// step legal on `model` from its initial state.
fn check_order(order: &[&SearchOp], required: usize, model: Model, initial: &Value) -> Result<(), String> {
    let distinct: BTreeSet<usize> = order.iter().map(|op| op.op_index).collect();
    if distinct.len() != order.len() {
        return Err("the merged order places an operation twice".into());
    }
    let placed_required = order.iter().filter(|op| op.model_op.required).count();
    if placed_required != required {
        return Err(format!("the merged order holds {placed_required} of the {required} completed operations"));
    }
    let mut table = StateTable::new(model, initial);
    let mut state = StateTable::INITIAL;
    let mut latest_call = None;
    for (number, op) in order.iter().enumerate() {
        if latest_call.is_some_and(|latest| op.ret < latest) {
            return Err(format!("operation {} comes after one called after it returned", op.op_index));
        }
        latest_call = latest_call.max(Some(op.call));
        let number = u32::try_from(number).expect("fewer than 2^32 ops");
        state = table
            .step(state, number, &op.model_op)
            .ok_or_else(|| format!("operation {} is not legal where the merged order puts it", op.op_index))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_history;

    /// Two keys: p0 puts x=1 then y=1; p1 reads y=1 then x=1 while they run.
    const TWO_KEYS: &str = r#"{:process 0, :type :invoke, :f :put, :key "x", :value "1"}
{:process 1, :type :invoke, :f :get, :key "y", :value nil}
{:process 0, :type :ok, :f :put, :key "x", :value "1"}
{:process 0, :type :invoke, :f :put, :key "y", :value "1"}
{:process 0, :type :ok, :f :put, :key "y", :value "1"}
{:process 1, :type :ok, :f :get, :key "y", :value "1"}
{:process 1, :type :invoke, :f :get, :key "x", :value nil}
{:process 1, :type :ok, :f :get, :key "x", :value "1"}"#;

    fn compiled(text: &str) -> Vec<SearchOp> {
        let history = parse_history(text, None).expect("well formed");
        let ops = operations(&history).expect("well formed");
        compile_all(&history, &ops, Model::KeyValue, false).expect("compiles")
    }

    fn by_id<'a>(ops: &'a [SearchOp], ids: &[usize]) -> Vec<&'a SearchOp> {
        ids.iter().map(|&id| ops.iter().find(|op| op.op_index == id).expect("an op of the history")).collect()
    }

    #[test]
    fn merging_keeps_each_keys_order_and_real_time() {
        let ops = compiled(TWO_KEYS);
        // Ops by id: 0 put x, 1 get y, 2 put y, 3 get x. Key x: [0, 3]; key y: [2, 1].
        let orders = vec![by_id(&ops, &[0, 3]), by_id(&ops, &[2, 1])];
        let merged: Vec<usize> = merge_orders(&orders).expect("mergeable").iter().map(|op| op.op_index).collect();
        assert_eq!(merged.len(), 4);
        let at = |id: usize| merged.iter().position(|&m| m == id).expect("merged");
        assert!(at(0) < at(3) && at(2) < at(1), "each key's order kept: {merged:?}");
        // get x (3) was called after put y (2) returned, and get y (1) returned before get x was called.
        assert!(at(2) < at(3) && at(1) < at(3), "real time kept: {merged:?}");
        let merged_ops = merge_orders(&orders).expect("mergeable");
        check_order(&merged_ops, 4, Model::KeyValue, &Value::from("")).expect("a linearization of the whole");
    }

    #[test]
    fn a_bad_order_is_rejected() {
        let ops = compiled(TWO_KEYS);
        let check = |ids: &[usize], required: usize| {
            check_order(&by_id(&ops, ids), required, Model::KeyValue, &Value::from(""))
        };
        check(&[0, 2, 1, 3], 4).expect("a linearization");
        // get y before put y: not legal.
        assert!(check(&[0, 1, 2, 3], 4).unwrap_err().contains("not legal"));
        // get x (called after put y returned) before put y: real time broken.
        assert!(check(&[0, 3, 2, 1], 4).unwrap_err().contains("called after it returned"));
        // An op missing, or twice.
        assert!(check(&[0, 2, 1], 4).unwrap_err().contains("3 of the 4"));
        assert!(check(&[0, 2, 1, 3, 3], 4).unwrap_err().contains("twice"));
        // Orders that contradict real time cannot be merged.
        let contradicting = vec![by_id(&ops, &[3, 0]), by_id(&ops, &[2, 1])];
        assert!(merge_orders(&contradicting).is_none());
    }
}
