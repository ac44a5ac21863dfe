//! Sequential consistency: is there one order of all operations, legal for the model, that keeps
//! each process's own order (real time between processes does not count)? A memoised search over
//! per-process cursors and model states.

use crate::linear::{compile_all, Budget, LinearizabilityOptions, SearchOp};
use crate::model::{Model, StateTable};
use crate::ops::{operations, HistoryError, Operation};
use crate::verdict::{Counterexample, PlacedOp, Validity, Verdict};
use detsim_core::history::{History, ProcessId};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;

/// The outcome of the sequential search.
enum SequentialOutcome {
    Valid,
    Invalid { prefix: Vec<(usize, u32)>, state: u32 },
    Unknown(String),
}

/// Searches for a legal interleaving of the per-process sequences. Ops that may be left out
/// (unknown outcomes) are the last of their process, so leaving one out ends that process.
fn search(
    processes: &[Vec<usize>],
    ops: &[SearchOp],
    table: &mut StateTable,
    budget: &mut Budget,
) -> SequentialOutcome {
    let total_required: usize = processes.iter().flatten().filter(|&&op| ops[op].model_op.required).count();
    let mut cursors = vec![0u32; processes.len()];
    let mut seen: FxHashSet<(Box<[u32]>, u32)> = FxHashSet::default();
    let entry_bytes = 4 * processes.len() + 48;
    let entry_limit = budget.entry_limit(entry_bytes);
    // A frame: the next process to try; the stack records (process, op, state before, skipped?).
    let mut stack: Vec<(usize, usize, u32, bool)> = Vec::new();
    let mut state = StateTable::INITIAL;
    let mut placed_required = 0usize;
    let mut next_process = 0usize;
    let mut best: Option<(Vec<(usize, u32)>, u32)> = None;
    seen.insert((cursors.clone().into_boxed_slice(), state));
    loop {
        if placed_required == total_required {
            return SequentialOutcome::Valid;
        }
        if let Some(reason) = budget.spent(seen.len(), entry_limit, table.bytes()) {
            return SequentialOutcome::Unknown(reason);
        }
        // Try the next candidate: process `next_process / 2`, placing (even) or skipping (odd) its op.
        let mut advanced = false;
        while next_process < 2 * processes.len() {
            let process = next_process / 2;
            let skip = next_process % 2 == 1;
            next_process += 1;
            let cursor = cursors[process] as usize;
            let Some(&op) = processes[process].get(cursor) else { continue };
            if skip && ops[op].model_op.required {
                continue;
            }
            let new_state = if skip {
                Some(state)
            } else {
                table.step(state, u32::try_from(op).expect("fewer than 2^32 ops"), &ops[op].model_op)
            };
            let Some(new_state) = new_state else { continue };
            cursors[process] += 1;
            if !seen.insert((cursors.clone().into_boxed_slice(), new_state)) {
                cursors[process] -= 1;
                continue;
            }
            stack.push((process, op, state, skip));
            state = new_state;
            if ops[op].model_op.required {
                placed_required += 1;
            }
            next_process = 0;
            advanced = true;
            break;
        }
        if advanced {
            continue;
        }
        let placed = stack.iter().filter(|frame| !frame.3).count();
        if best.as_ref().is_none_or(|(prefix, _)| placed > prefix.len()) {
            let mut prefix = Vec::new();
            for (i, frame) in stack.iter().enumerate() {
                if !frame.3 {
                    prefix.push((frame.1, stack.get(i + 1).map_or(state, |next| next.2)));
                }
            }
            best = Some((prefix, state));
        }
        let Some((process, op, before, skip)) = stack.pop() else {
            let (prefix, state) = best.expect("a best prefix was recorded just above");
            return SequentialOutcome::Invalid { prefix, state };
        };
        cursors[process] -= 1;
        state = before;
        if ops[op].model_op.required {
            placed_required -= 1;
        }
        next_process = 2 * process + if skip { 2 } else { 1 };
    }
}

/// Checks that `history` is sequentially consistent with respect to `model`: some legal order of
/// all operations keeps every process's order. Not compositional, so never partitioned by key;
/// `options.partition` is ignored.
pub fn check_sequential(
    history: &History,
    model: Model,
    options: &LinearizabilityOptions,
) -> Result<Verdict, HistoryError> {
    let ops: Vec<Operation> = operations(history)?;
    let compiled = compile_all(history, &ops, model, options.strict_cas)?;
    let mut by_process: BTreeMap<ProcessId, Vec<usize>> = BTreeMap::new();
    for (index, search_op) in compiled.iter().enumerate() {
        by_process.entry(ops[search_op.op_index].process).or_default().push(index);
    }
    let processes: Vec<Vec<usize>> = by_process.into_values().collect();
    let mut table = StateTable::new(model, &options.initial);
    let mut budget = Budget::new(options.time_budget, options.max_memory_entries, options.max_memory_bytes);
    let mut verdict = Verdict::new("sequential", Some(model.to_string()), ops.len());
    match search(&processes, &compiled, &mut table, &mut budget) {
        SequentialOutcome::Valid => {}
        SequentialOutcome::Unknown(reason) => {
            verdict.valid = Validity::Unknown;
            verdict.reason = Some(reason);
        }
        SequentialOutcome::Invalid { prefix, state } => {
            verdict.valid = Validity::Invalid;
            let placed: Vec<usize> = prefix.iter().map(|&(op, _)| op).collect();
            // The first required op of each process that the prefix did not place could not come next.
            let stuck: Vec<&Operation> = processes
                .iter()
                .filter_map(|sequence| sequence.iter().find(|op| !placed.contains(op)))
                .map(|&op| &ops[compiled[op].op_index])
                .collect();
            let unplaceable = stuck.first().copied().expect("an invalid history leaves some op unplaced");
            let mut involved: Vec<Operation> = stuck.iter().map(|&op| op.clone()).collect();
            involved.sort_by_key(|op| op.id);
            verdict.counterexample = Some(Counterexample {
                key: None,
                prefix: prefix
                    .iter()
                    .map(|&(op, after)| PlacedOp {
                        op: ops[compiled[op].op_index].clone(),
                        state_after: table.describe(after),
                    })
                    .collect(),
                state: table.describe(state),
                unplaceable: unplaceable.clone(),
                involved,
            });
        }
    }
    Ok(verdict)
}
