//! Differential tests: on thousands of random small histories of every model, the linearizability
//! checker (partitioned, not, and settled key by key) and the sequential-consistency checker agree with a brute-force
//! enumeration of all orders, written here independently of the checkers' models.

use detsim_check::{
    check_linearizable, check_sequential, operations, LinearizabilityOptions, Model, Operation, Outcome,
};
use detsim_core::history::{EventType, History, Op, Value};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A stream of choices drawn by proptest; 0 once it runs out, so shrinking simplifies histories.
struct Choices<'a> {
    bytes: &'a [u8],
    next: usize,
}

impl Choices<'_> {
    fn pick(&mut self, range: usize) -> usize {
        let byte = self.bytes.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        byte as usize % range.max(1)
    }
}

/// The state of one object, as the brute force sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    Value(Value),
    Set(BTreeSet<Value>),
    Count(i64),
    Queue(VecDeque<Value>),
}

fn initial(model: Model) -> Object {
    match model {
        Model::Register | Model::CasRegister => Object::Value(Value::Nil),
        Model::KeyValue => Object::Value(Value::from("")),
        Model::Set => Object::Set(BTreeSet::new()),
        Model::Counter => Object::Count(0),
        Model::Queue => Object::Queue(VecDeque::new()),
    }
}

/// What an op does, independent of detsim-check's model code: the new object state, or `None` when
/// the op cannot happen in `object`. `known` says whether the op's result is known (ok); a failed
/// cas under the strict reading is passed with `failed_cas`.
fn apply(object: &Object, op: &Operation, known: bool, failed_cas: bool) -> Option<Object> {
    let kv_value = |v: &Value| if v.is_nil() { Value::from("") } else { v.clone() };
    match (object, op.f.as_str()) {
        (Object::Value(current), "read" | "get") => {
            let seen = if matches!(current, Value::Str(_)) { kv_value(&op.output) } else { op.output.clone() };
            (!known || *current == seen).then(|| object.clone())
        }
        (Object::Value(_), "write" | "put") => Some(Object::Value(op.input.clone())),
        (Object::Value(current), "cas") => {
            let [from, to] = op.input.as_list().expect("cas [from to]") else { panic!("cas [from to]") };
            if failed_cas {
                (current != from).then(|| object.clone())
            } else {
                (current == from).then(|| Object::Value(to.clone()))
            }
        }
        (Object::Value(Value::Str(current)), "append") => {
            Some(Object::Value(Value::Str(format!("{current}{}", op.input.as_str().expect("a string")))))
        }
        (Object::Set(items), "add") => {
            let mut items = items.clone();
            items.insert(op.input.clone());
            Some(Object::Set(items))
        }
        (Object::Set(items), "read") => {
            let seen: BTreeSet<Value> = op.output.as_list().unwrap_or(&[]).iter().cloned().collect();
            (!known || *items == seen).then(|| object.clone())
        }
        (Object::Count(count), "add") => Some(Object::Count(count + op.input.as_int().expect("an amount"))),
        (Object::Count(count), "read") => (!known || Value::Int(*count) == op.output).then(|| object.clone()),
        (Object::Queue(items), "enqueue") => {
            let mut items = items.clone();
            items.push_back(op.input.clone());
            Some(Object::Queue(items))
        }
        (Object::Queue(items), "dequeue") => {
            let mut items = items.clone();
            let front = items.pop_front();
            (!known || front.clone().unwrap_or(Value::Nil) == op.output).then_some(Object::Queue(items))
        }
        other => panic!("brute force does not know {other:?}"),
    }
}

/// Whether an op must appear in every order (ok, or a strict failed cas), may appear (unknown
/// outcome), or never does (failed).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Required,
    Optional,
    Dropped,
}

fn role(op: &Operation, model: Model, strict_cas: bool) -> Role {
    let is_read = matches!(op.f.as_str(), "read" | "get");
    match op.outcome {
        Outcome::Ok => Role::Required,
        Outcome::Info if is_read => Role::Dropped,
        Outcome::Info => Role::Optional,
        Outcome::Fail if strict_cas && op.f == "cas" && matches!(model, Model::CasRegister | Model::KeyValue) => {
            Role::Required
        }
        Outcome::Fail => Role::Dropped,
    }
}

/// Is there an order of the ops, each placeable when `may_go_next` allows, that the model accepts?
fn brute_force(ops: &[Operation], model: Model, strict_cas: bool, real_time: bool) -> bool {
    let roles: Vec<Role> = ops.iter().map(|op| role(op, model, strict_cas)).collect();
    let mut placed = vec![false; ops.len()];
    let mut state: BTreeMap<Option<Value>, Object> = BTreeMap::new();
    search(ops, &roles, model, real_time, &mut placed, &mut state)
}

fn search(
    ops: &[Operation],
    roles: &[Role],
    model: Model,
    real_time: bool,
    placed: &mut Vec<bool>,
    state: &mut BTreeMap<Option<Value>, Object>,
) -> bool {
    if (0..ops.len()).all(|i| placed[i] || roles[i] != Role::Required) {
        return true;
    }
    for candidate in 0..ops.len() {
        if placed[candidate] || roles[candidate] == Role::Dropped {
            continue;
        }
        // Every required op that must come first has been placed.
        let blocked = (0..ops.len()).any(|other| {
            other != candidate
                && !placed[other]
                && roles[other] == Role::Required
                && if real_time {
                    ops[other].precedes(&ops[candidate])
                } else {
                    ops[other].process == ops[candidate].process && other < candidate
                }
        });
        if blocked {
            continue;
        }
        let op = &ops[candidate];
        let object = state.get(&op.key).cloned().unwrap_or_else(|| initial(model));
        let failed_cas = op.outcome == Outcome::Fail;
        let Some(next) = apply(&object, op, op.outcome == Outcome::Ok, failed_cas) else { continue };
        placed[candidate] = true;
        let before = state.insert(op.key.clone(), next);
        let found = search(ops, roles, model, real_time, placed, state);
        placed[candidate] = false;
        match before {
            Some(before) => state.insert(op.key.clone(), before),
            None => state.remove(&op.key),
        };
        if found {
            return true;
        }
    }
    false
}

/// An op being run by a process: what it is, and its result once it took effect.
struct Running {
    op: Op,
    result: Option<(Value, bool)>,
}

/// Builds a random small history: processes invoke ops, each takes effect on a true object at a
/// random moment before it completes (so most histories are linearizable), some complete with fail
/// or info, and some reads are then given a wrong result.
fn random_history(model: Model, choices: &mut Choices) -> History {
    let processes = 1 + choices.pick(4);
    let budget = 1 + choices.pick(7);
    // Two or three keys where the model has them, so that searches over several keys at once (no
    // partitioning: the key-order reduction, the read lookahead) meet interleavings worth getting wrong.
    let keys: &[&str] = if matches!(model, Model::KeyValue | Model::Register) {
        &["a", "b", "c"][..2 + choices.pick(2)]
    } else {
        &["a"]
    };
    let mut truth: BTreeMap<Option<Value>, Object> = BTreeMap::new();
    let mut running: Vec<Option<Running>> = (0..processes).map(|_| None).collect();
    let mut retired = vec![false; processes];
    // Unknown-outcome ops that may still take effect.
    let mut floating: Vec<Op> = Vec::new();
    let mut history = History::new();
    let mut invoked = 0;
    let mut time = 0u64;
    // Every state the object went through, so that a read can return a stale one (which keeps the
    // history sequentially consistent more often than linearizable).
    let mut past: Vec<BTreeMap<Option<Value>, Object>> = vec![BTreeMap::new()];
    let take_effect = |op: &Op,
                       truth: &mut BTreeMap<Option<Value>, Object>,
                       stale: Option<&BTreeMap<Option<Value>, Object>>|
     -> (Value, bool) {
        let object = truth.get(&op.key).cloned().unwrap_or_else(|| initial(model));
        let seen = stale.and_then(|old| old.get(&op.key)).cloned().unwrap_or_else(|| {
            if stale.is_some() {
                initial(model)
            } else {
                object.clone()
            }
        });
        let probe = Operation {
            id: 0,
            process: 0,
            f: op.f.clone(),
            key: op.key.clone(),
            input: op.value.clone(),
            output: Value::Nil,
            outcome: Outcome::Info,
            invoke_index: 0,
            complete_index: None,
            invoke_ns: 0,
            complete_ns: None,
            error: None,
        };
        let result = match (&seen, op.f.as_str()) {
            (Object::Value(v), "read" | "get") => v.clone(),
            (Object::Set(items), "read") => Value::List(items.iter().cloned().collect()),
            (Object::Count(count), "read") => Value::Int(*count),
            (Object::Queue(items), "dequeue") => items.front().cloned().unwrap_or(Value::Nil),
            _ => op.value.clone(),
        };
        match apply(&object, &probe, false, false) {
            Some(next) => {
                truth.insert(op.key.clone(), next);
                (result, true)
            }
            None => (result, false), // a cas whose `from` did not match
        }
    };
    for _ in 0..64 {
        time += 1;
        if choices.pick(4) == 0 {
            if let Some(op) = floating.pop() {
                take_effect(&op, &mut truth, None);
                past.push(truth.clone());
            }
        }
        let process = choices.pick(processes);
        match &mut running[process] {
            None if invoked < budget && !retired[process] => {
                let key = Some(Value::from(keys[choices.pick(keys.len())]));
                let small = Value::Int(choices.pick(3) as i64);
                let (f, value) = match (model, choices.pick(3)) {
                    (Model::Register, 0) | (Model::CasRegister, 0) => ("read", Value::Nil),
                    (Model::Register, _) => ("write", small),
                    (Model::CasRegister, 1) => ("write", small),
                    (Model::CasRegister, _) => ("cas", Value::from(vec![Value::Int(choices.pick(3) as i64), small])),
                    (Model::KeyValue, 0) => ("get", Value::Nil),
                    (Model::KeyValue, 1) => ("put", Value::from(["x", "y", ""][choices.pick(3)])),
                    (Model::KeyValue, _) => ("append", Value::from(["a", "b"][choices.pick(2)])),
                    (Model::Set, 0) => ("read", Value::Nil),
                    (Model::Set, _) => ("add", small),
                    (Model::Counter, 0) => ("read", Value::Nil),
                    (Model::Counter, _) => ("add", Value::Int(choices.pick(3) as i64)),
                    (Model::Queue, 0) => ("dequeue", Value::Nil),
                    (Model::Queue, _) => ("enqueue", small),
                };
                let key = if model == Model::Register && choices.pick(2) == 0 { None } else { key };
                let op = Op::new(f, key, value);
                history.push(time, process as u64, EventType::Invoke, op.clone(), None, None);
                running[process] = Some(Running { op, result: None });
                invoked += 1;
            }
            None => {}
            Some(run) if run.result.is_none() && choices.pick(3) != 0 => {
                let is_read = matches!(run.op.f.as_str(), "read" | "get");
                let stale = (is_read && choices.pick(2) == 0).then(|| past[choices.pick(past.len())].clone());
                run.result = Some(take_effect(&run.op, &mut truth, stale.as_ref()));
                past.push(truth.clone());
            }
            Some(_) => {
                let run = running[process].take().expect("a running op");
                let mut completion = run.op.clone();
                let kind = match run.result {
                    Some((result, true)) => {
                        if choices.pick(6) == 0 {
                            EventType::Info
                        } else {
                            completion.value = result;
                            EventType::Ok
                        }
                    }
                    Some((_, false)) => EventType::Fail,
                    None if choices.pick(2) == 0 => EventType::Fail,
                    None => {
                        floating.push(run.op.clone());
                        EventType::Info
                    }
                };
                if kind == EventType::Info {
                    retired[process] = true;
                    completion.value = run.op.value.clone();
                }
                history.push(time, process as u64, kind, completion, None, None);
            }
        }
    }
    // Some histories get a wrong read (possibly still explainable).
    if choices.pick(3) == 0 {
        let reads: Vec<usize> = (0..history.events.len())
            .filter(|&i| {
                let e = &history.events[i];
                e.kind == EventType::Ok && matches!(e.f.as_str(), "read" | "get" | "dequeue")
            })
            .collect();
        if !reads.is_empty() {
            let index = reads[choices.pick(reads.len())];
            // Half the time a value some earlier write wrote (a stale read), else any small value.
            let earlier: Vec<Value> = history.events[..index]
                .iter()
                .filter(|e| e.kind == EventType::Invoke && matches!(e.f.as_str(), "write" | "put" | "enqueue"))
                .map(|e| e.value.clone())
                .collect();
            let stale =
                (!earlier.is_empty() && choices.pick(2) == 0).then(|| earlier[choices.pick(earlier.len())].clone());
            let event = &mut history.events[index];
            event.value = match model {
                _ if stale.is_some() => stale.expect("checked"),
                Model::Set => Value::from(vec![choices.pick(3) as i64]),
                Model::KeyValue => Value::from(["x", "a", "ab", "ya"][choices.pick(4)]),
                _ => Value::Int(choices.pick(3) as i64),
            };
        }
    }
    history
}

const MODELS: [Model; 6] = Model::ALL;

fn agree(model_index: usize, choices: &[u8], strict_cas: bool) -> Result<(), TestCaseError> {
    let model = MODELS[model_index % MODELS.len()];
    let history = random_history(model, &mut Choices { bytes: choices, next: 0 });
    let ops = operations(&history).expect("generated histories are well formed");
    let expected_linearizable = brute_force(&ops, model, strict_cas, true);
    let expected_sequential = brute_force(&ops, model, strict_cas, false);
    // Partitioned; the whole history as one search; and settled key by key, then checked whole.
    let whole_steps = LinearizabilityOptions::default().whole_search_steps;
    for (partition, whole_search_steps) in [(true, whole_steps), (false, whole_steps), (false, 0)] {
        let options =
            LinearizabilityOptions { partition, strict_cas, whole_search_steps, ..LinearizabilityOptions::default() };
        let verdict = check_linearizable(&history, model, &options).expect("well formed");
        prop_assert_eq!(
            verdict.is_valid(),
            expected_linearizable,
            "linearizable, {} partition={} whole_search_steps={} strict={}: {}\n{:#?}",
            model,
            partition,
            whole_search_steps,
            strict_cas,
            verdict,
            ops
        );
    }
    let options = LinearizabilityOptions { strict_cas, ..LinearizabilityOptions::default() };
    let verdict = check_sequential(&history, model, &options).expect("well formed");
    prop_assert_eq!(verdict.is_valid(), expected_sequential, "sequential, {}: {}\n{:#?}", model, verdict, ops);
    // Linearizable implies sequentially consistent.
    prop_assert!(!expected_linearizable || expected_sequential);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, ..ProptestConfig::default() })]

    #[test]
    fn checkers_agree_with_brute_force(model in 0..6usize, choices in prop::collection::vec(any::<u8>(), 0..400)) {
        agree(model, &choices, false)?;
    }

    #[test]
    fn checkers_agree_with_brute_force_strict_cas(choices in prop::collection::vec(any::<u8>(), 0..400)) {
        agree(1, &choices, true)?;
    }
}

/// The class of bug the differential test exists for, pinned: a write of the value a register
/// already holds leaves the state unchanged, yet undoing it can matter.
#[test]
fn write_of_the_current_value_can_still_need_a_later_place() {
    // w3 by p0 done; p1 writes 3 (slow); p2 writes 5 and finishes; p3 reads 3 after that.
    let mut history = History::new();
    let op = |f: &str, v: Value| Op::new(f, None, v);
    history.push(0, 0, EventType::Invoke, op("write", Value::Int(3)), None, None);
    history.push(1, 0, EventType::Ok, op("write", Value::Int(3)), None, None);
    history.push(2, 1, EventType::Invoke, op("write", Value::Int(3)), None, None);
    history.push(3, 2, EventType::Invoke, op("write", Value::Int(5)), None, None);
    history.push(4, 2, EventType::Ok, op("write", Value::Int(5)), None, None);
    history.push(5, 3, EventType::Invoke, op("read", Value::Nil), None, None);
    history.push(6, 3, EventType::Ok, op("read", Value::Int(3)), None, None);
    history.push(7, 1, EventType::Ok, op("write", Value::Int(3)), None, None);
    let ops = operations(&history).expect("well formed");
    assert!(brute_force(&ops, Model::Register, false, true), "w3, w5, w3, r3 is a linearization");
    let verdict =
        check_linearizable(&history, Model::Register, &LinearizabilityOptions::default()).expect("well formed");
    assert!(verdict.is_valid(), "{verdict}");
}

/// The generator is useful only if it yields plenty of both verdicts, for every model.
#[test]
fn random_histories_are_both_valid_and_invalid() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut only_sequential_total = 0;
    for model in MODELS {
        let (mut valid, mut invalid, mut not_sequential, mut only_sequential) = (0, 0, 0, 0);
        for _ in 0..400 {
            let bytes: Vec<u8> = (0..400)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 32) as u8
                })
                .collect();
            let history = random_history(model, &mut Choices { bytes: &bytes, next: 0 });
            let ops = operations(&history).expect("well formed");
            if brute_force(&ops, model, false, true) {
                valid += 1;
            } else {
                invalid += 1;
            }
            let sequential = brute_force(&ops, model, false, false);
            if !sequential {
                not_sequential += 1;
            }
            if sequential && !brute_force(&ops, model, false, true) {
                only_sequential += 1;
            }
        }
        assert!(valid >= 80 && invalid >= 30, "{model}: {valid} linearizable, {invalid} not");
        assert!(not_sequential >= 10, "{model}: only {not_sequential} not sequentially consistent");
        only_sequential_total += only_sequential;
    }
    // Histories that tell the two checkers apart: sequentially consistent, not linearizable.
    assert!(only_sequential_total >= 10, "only {only_sequential_total} sequential-only histories");
}
