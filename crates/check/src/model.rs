//! Sequential specifications (models) of the objects whose histories are checked: register,
//! cas-register, key-value map, set, counter, FIFO queue; and an interning table of their states.

use crate::ops::{timed_out, HistoryError, Operation, Outcome};
use detsim_core::history::{History, Value};
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

/// The object a history is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Model {
    /// read / write.
    Register,
    /// read / write / cas (value `[from to]`).
    CasRegister,
    /// get / put / append on string (or list) values, per key; a key never written reads as "".
    KeyValue,
    /// add / read (the read's value: every element).
    Set,
    /// add or inc (value: the amount, 1 when nil) / read.
    Counter,
    /// enqueue / dequeue (the dequeue's value: what came out; nil when the queue was empty).
    Queue,
}

impl Model {
    pub const ALL: [Model; 6] =
        [Model::Register, Model::CasRegister, Model::KeyValue, Model::Set, Model::Counter, Model::Queue];

    pub fn name(self) -> &'static str {
        match self {
            Model::Register => "register",
            Model::CasRegister => "cas-register",
            Model::KeyValue => "kv",
            Model::Set => "set",
            Model::Counter => "counter",
            Model::Queue => "queue",
        }
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "register" => Ok(Model::Register),
            "cas-register" | "cas" => Ok(Model::CasRegister),
            "kv" | "key-value" => Ok(Model::KeyValue),
            "set" => Ok(Model::Set),
            "counter" => Ok(Model::Counter),
            "queue" | "fifo-queue" => Ok(Model::Queue),
            other => {
                Err(format!("unknown model {other:?} (expected register, cas-register, kv, set, counter or queue)"))
            }
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an operation does to its object, as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Read(Value),
    Write(Value),
    Cas {
        from: Value,
        to: Value,
    },
    /// Porcupine's strict reading of a failed cas: it saw a value other than `from`.
    CasFailed {
        from: Value,
    },
    Append(Value),
    Add(Value),
    ReadSet(BTreeSet<Value>),
    Increment(i64),
    ReadCount(i64),
    Enqueue(Value),
    Dequeue(Value),
    /// A dequeue with an unknown result.
    DequeueAny,
}

impl Step {
    /// True when the step never changes an object it can be applied to (a read, a failed cas, a
    /// dequeue that saw the queue empty, ...). Only such steps may be treated as free to move
    /// earlier by the search; a write that happens to rewrite the current value is not one.
    pub fn is_read_only(&self) -> bool {
        match self {
            Step::Read(_) | Step::ReadSet(_) | Step::ReadCount(_) | Step::CasFailed { .. } => true,
            Step::Cas { from, to } => from == to,
            Step::Increment(amount) => *amount == 0,
            Step::Dequeue(seen) => seen.is_nil(),
            Step::Write(_) | Step::Append(_) | Step::Add(_) | Step::Enqueue(_) | Step::DequeueAny => false,
        }
    }
}

/// An operation compiled for a model: the object (key) it touches and what it does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ModelOp {
    pub key: Option<Value>,
    pub step: Step,
    /// True when the operation certainly happened (ok, or a strict failed cas); false when it may be dropped.
    pub required: bool,
}

fn bad(op: &Operation, message: String) -> HistoryError {
    HistoryError { event_index: op.invoke_index, message }
}

fn expect_pair(op: &Operation) -> Result<(Value, Value), HistoryError> {
    match op.input.as_list() {
        Some([from, to]) => Ok((from.clone(), to.clone())),
        _ => Err(bad(op, format!("cas needs a value [from to], found {}", op.input))),
    }
}

/// Compiles an operation, or `None` when it has no effect to check: a failed op (unless strict cas),
/// or a read whose result is unknown.
pub(crate) fn compile(
    model: Model,
    op: &Operation,
    strict_cas: bool,
    history: &History,
) -> Result<Option<ModelOp>, HistoryError> {
    let f = op.f.as_str();
    let known = op.outcome == Outcome::Ok;
    let is_read = matches!((model, f), (_, "read") | (Model::KeyValue | Model::Register | Model::CasRegister, "get"));
    if op.outcome == Outcome::Fail {
        let strict = strict_cas && f == "cas" && matches!(model, Model::CasRegister | Model::KeyValue);
        let read_timed_out = is_read && timed_out(op, history);
        if !strict || read_timed_out {
            // Validate the function name anyway, so that a typo is reported.
            check_function(model, op)?;
            return Ok(None);
        }
        let (from, _) = expect_pair(op)?;
        return Ok(Some(ModelOp { key: op.key.clone(), step: Step::CasFailed { from }, required: true }));
    }
    check_function(model, op)?;
    if is_read && !known {
        return Ok(None);
    }
    let step = match (model, f) {
        (Model::Register | Model::CasRegister, "read" | "get") => Step::Read(op.output.clone()),
        (Model::KeyValue, "read" | "get") => {
            Step::Read(if op.output.is_nil() { Value::Str(String::new()) } else { op.output.clone() })
        }
        (Model::Register | Model::CasRegister | Model::KeyValue, "write" | "put") => Step::Write(op.input.clone()),
        (Model::CasRegister | Model::KeyValue, "cas") => {
            let (from, to) = expect_pair(op)?;
            Step::Cas { from, to }
        }
        (Model::KeyValue, "append") => Step::Append(op.input.clone()),
        (Model::Set, "add") => Step::Add(op.input.clone()),
        (Model::Set, "read") => match &op.output {
            Value::List(items) => Step::ReadSet(items.iter().cloned().collect()),
            Value::Nil => Step::ReadSet(BTreeSet::new()),
            other => return Err(bad(op, format!("a set read returns a list, found {other}"))),
        },
        (Model::Counter, "add" | "inc" | "increment") => match &op.input {
            Value::Nil => Step::Increment(1),
            Value::Int(amount) => Step::Increment(*amount),
            other => return Err(bad(op, format!("a counter add takes an integer, found {other}"))),
        },
        (Model::Counter, "read") => match &op.output {
            Value::Int(count) => Step::ReadCount(*count),
            Value::Nil => Step::ReadCount(0),
            other => return Err(bad(op, format!("a counter read returns an integer, found {other}"))),
        },
        (Model::Queue, "enqueue") => Step::Enqueue(op.input.clone()),
        (Model::Queue, "dequeue") if known => Step::Dequeue(op.output.clone()),
        (Model::Queue, "dequeue") => Step::DequeueAny,
        _ => unreachable!("check_function accepted {f} for {model}"),
    };
    Ok(Some(ModelOp { key: op.key.clone(), step, required: known }))
}

fn check_function(model: Model, op: &Operation) -> Result<(), HistoryError> {
    let f = op.f.as_str();
    let allowed: &[&str] = match model {
        Model::Register => &["read", "get", "write", "put"],
        Model::CasRegister => &["read", "get", "write", "put", "cas"],
        Model::KeyValue => &["read", "get", "write", "put", "append", "cas"],
        Model::Set => &["add", "read"],
        Model::Counter => &["add", "inc", "increment", "read"],
        Model::Queue => &["enqueue", "dequeue"],
    };
    if allowed.contains(&f) {
        Ok(())
    } else {
        Err(bad(op, format!("the {model} model has no operation {f:?} (it knows {})", allowed.join(", "))))
    }
}

/// The state of one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ObjectState {
    Value(Value),
    Set(BTreeSet<Value>),
    Counter(i64),
    Queue(VecDeque<Value>),
}

impl fmt::Display for ObjectState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectState::Value(value) => write!(f, "{value}"),
            ObjectState::Set(items) => write!(f, "{}", Value::List(items.iter().cloned().collect())),
            ObjectState::Counter(count) => write!(f, "{count}"),
            ObjectState::Queue(items) => write!(f, "{}", Value::List(items.iter().cloned().collect())),
        }
    }
}

/// The initial state of one object of `model`.
pub(crate) fn initial_object(model: Model, initial: &Value) -> ObjectState {
    match model {
        Model::Register | Model::CasRegister => ObjectState::Value(initial.clone()),
        Model::KeyValue => {
            ObjectState::Value(if initial.is_nil() { Value::Str(String::new()) } else { initial.clone() })
        }
        Model::Set => ObjectState::Set(initial.as_list().map(|l| l.iter().cloned().collect()).unwrap_or_default()),
        Model::Counter => ObjectState::Counter(initial.as_int().unwrap_or(0)),
        Model::Queue => ObjectState::Queue(initial.as_list().map(|l| l.iter().cloned().collect()).unwrap_or_default()),
    }
}

/// Applies a step to one object; `None` when the step is impossible in that state.
pub(crate) fn apply(state: &ObjectState, step: &Step) -> Option<ObjectState> {
    match (state, step) {
        (ObjectState::Value(current), Step::Read(seen)) => (current == seen).then(|| state.clone()),
        (ObjectState::Value(_), Step::Write(value)) => Some(ObjectState::Value(value.clone())),
        (ObjectState::Value(current), Step::Cas { from, to }) => {
            (current == from).then(|| ObjectState::Value(to.clone()))
        }
        (ObjectState::Value(current), Step::CasFailed { from }) => (current != from).then(|| state.clone()),
        (ObjectState::Value(current), Step::Append(suffix)) => Some(ObjectState::Value(match (current, suffix) {
            (Value::Str(prefix), Value::Str(suffix)) => Value::Str(format!("{prefix}{suffix}")),
            (Value::List(items), element) => {
                let mut items = items.clone();
                items.push(element.clone());
                Value::List(items)
            }
            (Value::Nil, Value::Str(suffix)) => Value::Str(suffix.clone()),
            (Value::Nil, element) => Value::List(vec![element.clone()]),
            _ => return None,
        })),
        (ObjectState::Set(items), Step::Add(element)) => {
            let mut items = items.clone();
            items.insert(element.clone());
            Some(ObjectState::Set(items))
        }
        (ObjectState::Set(items), Step::ReadSet(seen)) => (items == seen).then(|| state.clone()),
        (ObjectState::Counter(count), Step::Increment(amount)) => {
            Some(ObjectState::Counter(count.checked_add(*amount)?))
        }
        (ObjectState::Counter(count), Step::ReadCount(seen)) => (count == seen).then(|| state.clone()),
        (ObjectState::Queue(items), Step::Enqueue(element)) => {
            let mut items = items.clone();
            items.push_back(element.clone());
            Some(ObjectState::Queue(items))
        }
        (ObjectState::Queue(items), Step::Dequeue(seen)) => match items.front() {
            None => seen.is_nil().then(|| state.clone()),
            Some(front) if front == seen => {
                let mut items = items.clone();
                items.pop_front();
                Some(ObjectState::Queue(items))
            }
            Some(_) => None,
        },
        (ObjectState::Queue(items), Step::DequeueAny) => {
            let mut items = items.clone();
            items.pop_front();
            Some(ObjectState::Queue(items))
        }
        _ => None,
    }
}

/// Interns model states as small integers and memoises transitions, so that the searches deal in
/// `u32`s: an object state is built and hashed once, a transition computed once. A model state is
/// the vector of its objects' state ids, one slot per key in order of first use.
pub(crate) struct StateTable {
    /// The state every object starts in (what [`StateTable::reset`] goes back to).
    initial_object: ObjectState,
    slot_keys: Vec<Option<Value>>,
    slots: FxHashMap<Option<Value>, u32>,
    objects: Vec<ObjectState>,
    object_ids: FxHashMap<ObjectState, u32>,
    object_transitions: FxHashMap<(u32, u32), Option<u32>>,
    states: Vec<Box<[u32]>>,
    state_ids: FxHashMap<Box<[u32]>, u32>,
    transitions: FxHashMap<(u32, u32), Option<u32>>,
    bytes: usize,
}

impl StateTable {
    pub const INITIAL: u32 = 0;
    const INITIAL_OBJECT: u32 = 0;

    pub fn new(model: Model, initial: &Value) -> Self {
        let mut table = StateTable {
            initial_object: initial_object(model, initial),
            slot_keys: Vec::new(),
            slots: FxHashMap::default(),
            objects: Vec::new(),
            object_ids: FxHashMap::default(),
            object_transitions: FxHashMap::default(),
            states: Vec::new(),
            state_ids: FxHashMap::default(),
            transitions: FxHashMap::default(),
            bytes: 0,
        };
        table.intern_initial();
        table
    }

    fn intern_initial(&mut self) {
        let initial_object_id = self.intern_object(self.initial_object.clone());
        assert_eq!(initial_object_id, Self::INITIAL_OBJECT, "the initial object is object 0");
        let initial_id = self.intern_state(Box::new([]));
        assert_eq!(initial_id, Self::INITIAL, "the initial state is state 0");
    }

    /// Forgets every state (for the next partition), keeping the allocations.
    pub fn reset(&mut self) {
        self.slot_keys.clear();
        self.slots.clear();
        self.objects.clear();
        self.object_ids.clear();
        self.object_transitions.clear();
        self.states.clear();
        self.state_ids.clear();
        self.transitions.clear();
        self.bytes = 0;
        self.intern_initial();
    }

    /// Roughly how many bytes the table holds (for the memory budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn intern_object(&mut self, object: ObjectState) -> u32 {
        if let Some(&id) = self.object_ids.get(&object) {
            return id;
        }
        let id = u32::try_from(self.objects.len()).expect("fewer than 2^32 distinct object states");
        self.bytes += 2 * object_bytes(&object) + 64;
        self.objects.push(object.clone());
        self.object_ids.insert(object, id);
        id
    }

    fn intern_state(&mut self, state: Box<[u32]>) -> u32 {
        if let Some(&id) = self.state_ids.get(&state) {
            return id;
        }
        let id = u32::try_from(self.states.len()).expect("fewer than 2^32 distinct states");
        self.bytes += 2 * 4 * state.len() + 64;
        self.states.push(state.clone());
        self.state_ids.insert(state, id);
        id
    }

    fn slot(&mut self, key: &Option<Value>) -> usize {
        if let Some(&slot) = self.slots.get(key) {
            return slot as usize;
        }
        let slot = self.slot_keys.len();
        self.slot_keys.push(key.clone());
        self.slots.insert(key.clone(), u32::try_from(slot).expect("fewer than 2^32 keys"));
        slot
    }

    /// The state after `op` (number `op_number`, a stable identity for the memo) from `state`.
    pub fn step(&mut self, state: u32, op_number: u32, op: &ModelOp) -> Option<u32> {
        if let Some(&next) = self.transitions.get(&(state, op_number)) {
            return next;
        }
        let slot = self.slot(&op.key);
        let object = self.states[state as usize].get(slot).copied().unwrap_or(Self::INITIAL_OBJECT);
        let next_object = match self.object_transitions.get(&(object, op_number)) {
            Some(&next_object) => next_object,
            None => {
                let next_object = apply(&self.objects[object as usize], &op.step).map(|o| self.intern_object(o));
                self.object_transitions.insert((object, op_number), next_object);
                self.bytes += 32;
                next_object
            }
        };
        let next = next_object.map(|next_object| {
            if next_object == object {
                return state;
            }
            let mut next_state = self.states[state as usize].to_vec();
            if next_state.len() <= slot {
                next_state.resize(slot + 1, Self::INITIAL_OBJECT);
            }
            next_state[slot] = next_object;
            self.intern_state(next_state.into_boxed_slice())
        });
        self.transitions.insert((state, op_number), next);
        self.bytes += 32;
        next
    }

    /// The value of `key`'s object in state `id`, when the object is a plain value.
    pub fn value_of(&self, id: u32, key: &Option<Value>) -> Option<&Value> {
        let slot = self.slots.get(key).map_or(usize::MAX, |&slot| slot as usize);
        let object = self.states[id as usize].get(slot).copied().unwrap_or(Self::INITIAL_OBJECT);
        match &self.objects[object as usize] {
            ObjectState::Value(value) => Some(value),
            _ => None,
        }
    }

    /// The state `id` rendered for a report (`nil`, `{"k" "v", ...}`).
    pub fn describe(&self, id: u32) -> String {
        let state = &self.states[id as usize];
        let mut touched: Vec<(&Option<Value>, &ObjectState)> = state
            .iter()
            .enumerate()
            .map(|(slot, &object)| (&self.slot_keys[slot], &self.objects[object as usize]))
            .collect();
        touched.sort_by(|a, b| a.0.cmp(b.0));
        match touched.as_slice() {
            [] => self.objects[Self::INITIAL_OBJECT as usize].to_string(),
            [(None, object)] => object.to_string(),
            _ => {
                let parts: Vec<String> = touched
                    .iter()
                    .map(|(key, object)| format!("{} {}", key.as_ref().map_or("nil".into(), |k| k.to_string()), object))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
        }
    }
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Str(s) => 24 + s.len(),
        Value::List(items) => 24 + items.iter().map(value_bytes).sum::<usize>(),
        _ => 24,
    }
}

fn object_bytes(object: &ObjectState) -> usize {
    match object {
        ObjectState::Value(value) => value_bytes(value),
        ObjectState::Set(items) => 24 + items.iter().map(value_bytes).sum::<usize>(),
        ObjectState::Counter(_) => 8,
        ObjectState::Queue(items) => 24 + items.iter().map(value_bytes).sum::<usize>(),
    }
}

/// True when `value` is `prefix` followed by more (strings or lists): appends only ever extend a value.
pub(crate) fn extends(value: &Value, prefix: &Value) -> bool {
    match (value, prefix) {
        (Value::Str(value), Value::Str(prefix)) => value.starts_with(prefix.as_str()),
        (Value::List(value), Value::List(prefix)) => value.starts_with(prefix),
        (_, Value::Nil) => true,
        (Value::List(_), Value::Str(prefix)) => prefix.is_empty(),
        _ => value == prefix,
    }
}
