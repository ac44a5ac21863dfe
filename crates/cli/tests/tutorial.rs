//! The code of docs/testing-your-protocol.md, compiled and run: a primary-backup register written
//! from scratch, property-tested with `detsim::testing`; its "failover" optimisation splits the
//! brain under a partition, and proptest shrinks the counterexample to a handful of fault windows.
//! The last test checks that every Rust block of the tutorial is a verbatim excerpt of this file.

use detsim::proptest::test_runner::TestCaseError;
use detsim::testing::{check, search, CaseSpace, ClientReply, ClientRequest, Cluster, Report, Service};
use detsim::{Ctx, Message, Model, Node, NodeId, Storage, TimerId, Value};
use std::time::Duration;

#[derive(Clone, Debug, Hash)]
enum Msg {
    /// A client's request (the harness wraps it with `Service::request`).
    Request(ClientRequest),
    /// An answer to a client.
    Reply(ClientReply),
    /// Primary to backups: "I am alive; the register holds `value`, write number `version`".
    Heartbeat { version: u64, value: Value },
    /// Backup to primary: "I have write number `version`".
    Ack { version: u64 },
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
            Msg::Heartbeat { .. } => "Heartbeat",
            Msg::Ack { .. } => "Ack",
        }
    }
}

const HEARTBEAT: u64 = 1;
const HEARTBEAT_MS: u64 = 20;

/// A register on three servers: `n1` is the primary, `n2` and `n3` its backups.
struct Server {
    id: NodeId,
    servers: u32,
    /// The register and how many writes it has seen (kept in storage, so a crash loses nothing).
    version: u64,
    value: Value,
    /// The write waiting for backups to confirm, and who asked for it.
    pending: Option<(NodeId, ClientRequest, u64)>,
    acks: Vec<NodeId>,
    /// Who this server believes is primary.
    primary: NodeId,
    /// The bug switch: a backup that misses heartbeats promotes itself.
    failover: bool,
    silent_ticks: u32,
}

impl Server {
    fn new(id: NodeId, storage: &Storage, failover: bool) -> Self {
        let (version, value) = storage.get("register").unwrap_or((0, Value::Nil));
        Server {
            id,
            servers: 3,
            version,
            value,
            pending: None,
            acks: Vec::new(),
            primary: NodeId(0),
            failover,
            silent_ticks: 0,
        }
    }

    fn is_primary(&self) -> bool {
        self.primary == self.id
    }

    fn backups(&self) -> Vec<NodeId> {
        (0..self.servers).map(NodeId).filter(|n| *n != self.id).collect()
    }
}

impl Node for Server {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        ctx.set_timer(Duration::from_millis(HEARTBEAT_MS), HEARTBEAT);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(request) if !self.is_primary() => {
                let reply = ClientReply::NotLeader { id: request.id, leader: Some(self.primary) };
                ctx.send(from, Msg::Reply(reply));
            }
            Msg::Request(request) => match request.op.f.as_str() {
                "read" => {
                    let reply = ClientReply::Ok { id: request.id, value: self.value.clone() };
                    ctx.send(from, Msg::Reply(reply));
                }
                "write" if self.pending.is_none() => {
                    self.version += 1;
                    self.value = request.op.value.clone();
                    ctx.storage().put("register", &(self.version, self.value.clone()));
                    self.pending = Some((from, request, self.version));
                    self.acks.clear();
                    let heartbeat = Msg::Heartbeat { version: self.version, value: self.value.clone() };
                    ctx.send_all(self.backups(), &heartbeat);
                }
                _ => {} // busy with another write, or not an operation of ours: the client retries
            },
            Msg::Heartbeat { version, value } => {
                self.primary = from;
                self.silent_ticks = 0;
                if version >= self.version {
                    (self.version, self.value) = (version, value);
                    ctx.storage().put("register", &(self.version, self.value.clone()));
                }
                ctx.send(from, Msg::Ack { version: self.version });
            }
            Msg::Ack { version } => {
                let Some((client, request, waiting_for)) = self.pending.clone() else { return };
                if version >= waiting_for && !self.acks.contains(&from) {
                    self.acks.push(from);
                }
                // A majority (this server and one backup) has the write: answer the client.
                if !self.acks.is_empty() {
                    ctx.send(client, Msg::Reply(ClientReply::Ok { id: request.id, value: Value::Nil }));
                    self.pending = None;
                }
            }
            Msg::Reply(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, _tag: u64) {
        if self.is_primary() {
            let heartbeat = Msg::Heartbeat { version: self.version, value: self.value.clone() };
            ctx.send_all(self.backups(), &heartbeat);
        } else {
            self.silent_ticks += 1;
            // The "optimisation": after 5 silent heartbeats, the first backup takes over.
            if self.failover && self.silent_ticks > 5 && self.id == NodeId(1) {
                self.primary = self.id;
            }
        }
        ctx.set_timer(Duration::from_millis(HEARTBEAT_MS), HEARTBEAT);
    }
}

impl Service for Server {
    fn request(request: ClientRequest) -> Msg {
        Msg::Request(request)
    }
    fn reply(msg: &Msg) -> Option<ClientReply> {
        match msg {
            Msg::Reply(reply) => Some(reply.clone()),
            _ => None,
        }
    }
}

fn cluster(failover: bool) -> Cluster<Server> {
    Cluster::new(3, move |id, storage| Server::new(id, storage, failover)).clients(3)
}

fn linearizable_and_live(report: &Report) -> Result<(), TestCaseError> {
    report.assert_linearizable(Model::Register)?;
    report.assert_live_after_heal()
}

#[test]
fn the_register_is_linearizable_and_live_after_heal() {
    check(&cluster(false), &CaseSpace::default(), linearizable_and_live);
}

#[test]
#[should_panic(expected = "minimal counterexample after shrinking")]
fn the_failover_register_is_linearizable_and_live() {
    check(&cluster(true), &CaseSpace::default(), linearizable_and_live);
}

#[test]
fn failover_splits_the_brain_in_a_partition() {
    let counterexample = search(&cluster(true), &CaseSpace::default(), linearizable_and_live)
        .expect_err("a backup that promotes itself must break linearizability");
    let faults = &counterexample.case.faults;
    assert!(faults.len() <= 3, "shrunk to a handful of windows: {faults:#?}");
    assert!(counterexample.message.contains("not linearizable"), "{}", counterexample.message);
    println!("{counterexample}");
}

#[test]
fn the_tutorial_shows_this_code() {
    let tutorial = include_str!("../../../docs/testing-your-protocol.md");
    let source = include_str!("tutorial.rs");
    let mut blocks = 0;
    let mut rest = tutorial;
    while let Some(start) = rest.find("```rust\n") {
        let body_start = start + "```rust\n".len();
        let end = rest[body_start..].find("```").expect("every code block is closed") + body_start;
        let block = &rest[body_start..end];
        for piece in block.split("\n// ...\n") {
            assert!(source.contains(piece.trim_end()), "the tutorial's block is not in tests/tutorial.rs:\n{piece}");
        }
        blocks += 1;
        rest = &rest[end + 3..];
    }
    assert!(blocks >= 5, "the tutorial has its code blocks ({blocks})");
}
