//! A small protocol written here, as a user would (not from detsim-protocols), tested with
//! `detsim::testing`: a primary register server that persists each write before acknowledging it is
//! linearizable and live after heal under random faults; a variant that acknowledges first and
//! flushes to disk later loses acknowledged writes in a crash, and proptest shrinks the failure to a
//! handful of faults; the weaker models' assertions (sequential, causal, session, convergence) pass
//! where they should, and convergence accepts the write-back bug that linearizability rejects; the
//! counterexample's run folder has a report.html whose run is the failing run (same trace hash) with
//! the crash where the schedule put it, and `check`'s panic names it.

use detsim::testing::{
    check, run, search, write_report, CaseSpace, ClientReply, ClientRequest, Cluster, Service, WindowFault,
};
use detsim::{Ctx, Message, Model, Node, NodeId, Storage, TimerId, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The protocol's messages: only client traffic (the primary serves everything).
#[derive(Clone, Debug, Hash)]
enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// What the primary keeps on disk: the register and, per client, the last request it applied (so a
/// duplicated request is not applied twice).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Durable {
    value: Value,
    last_applied: BTreeMap<u32, u64>,
}

const PRIMARY: NodeId = NodeId(0);
const FLUSH_TIMER: u64 = 1;

/// A register served by a fixed primary, `n1`; the other servers redirect clients to it.
struct Register {
    id: NodeId,
    state: Durable,
    /// The bug: acknowledge writes at once and write them to disk on a timer.
    write_back: bool,
}

impl Register {
    fn recover(id: NodeId, storage: &Storage, write_back: bool) -> Self {
        Register { id, state: storage.get("register").unwrap_or_default(), write_back }
    }
}

impl Node for Register {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if self.write_back && self.id == PRIMARY {
            ctx.set_timer(Duration::from_millis(200), FLUSH_TIMER);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        let Msg::Request(request) = msg else { return };
        if self.id != PRIMARY {
            ctx.send(from, Msg::Reply(ClientReply::NotLeader { id: request.id, leader: Some(PRIMARY) }));
            return;
        }
        let reply = match request.op.f.as_str() {
            "read" => ClientReply::Ok { id: request.id, value: self.state.value.clone() },
            "write" => {
                let last = self.state.last_applied.get(&from.0).copied();
                if last.is_none_or(|last| request.id > last) {
                    self.state.value = request.op.value.clone();
                    self.state.last_applied.insert(from.0, request.id);
                    if !self.write_back {
                        // Durable before acknowledged: a crash after the reply cannot lose the write.
                        ctx.storage().put("register", &self.state);
                    }
                }
                ClientReply::Ok { id: request.id, value: Value::Nil }
            }
            other => ClientReply::Fail { id: request.id, error: format!("unknown operation {other}") },
        };
        ctx.send(from, Msg::Reply(reply));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        if tag == FLUSH_TIMER {
            ctx.storage().put("register", &self.state);
            ctx.set_timer(Duration::from_millis(200), FLUSH_TIMER);
        }
    }
}

impl Service for Register {
    fn request(request: ClientRequest) -> Msg {
        Msg::Request(request)
    }
    fn reply(msg: &Msg) -> Option<ClientReply> {
        match msg {
            Msg::Reply(reply) => Some(reply.clone()),
            Msg::Request(_) => None,
        }
    }
}

fn cluster(write_back: bool) -> Cluster<Register> {
    Cluster::new(3, move |id, storage| Register::recover(id, storage, write_back)).clients(2)
}

fn linearizable_and_live(report: &detsim::testing::Report) -> Result<(), detsim::proptest::test_runner::TestCaseError> {
    report.assert_linearizable(Model::Register)?;
    report.assert_live_after_heal()
}

#[test]
fn write_through_primary_is_linearizable_and_live_after_heal_under_random_faults() {
    check(&cluster(false), &CaseSpace { cases: 48, ..CaseSpace::default() }, linearizable_and_live);
}

#[test]
fn write_back_primary_loses_acknowledged_writes_and_shrinks_to_one_crash() {
    let cluster = cluster(true);
    let counterexample = search(&cluster, &CaseSpace { cases: 64, ..CaseSpace::default() }, linearizable_and_live)
        .expect_err("acknowledging before the write is durable must lose a write in some crash");
    let faults = &counterexample.case.faults;
    // Shrinking leaves only what the bug needs: a crash of the primary (every other window removed).
    assert!(faults.len() <= 2, "shrunk schedule should be tiny, got {} windows: {faults:?}", faults.len());
    assert!(
        faults.iter().any(|w| w.fault == WindowFault::Crash { node: 0 }),
        "the minimal schedule crashes the primary n1: {faults:?}"
    );
    let message = &counterexample.message;
    for needle in [
        "not linearizable",
        "seed: ",
        "fault schedule",
        "crash n1",
        "DETSIM_REPLAY='",
        "cargo test -p detsim --test user_protocol -- ",
        "[[faults]]",
    ] {
        assert!(message.contains(needle), "failure message lacks {needle:?}:\n{message}");
    }
    // The minimal case fails again on its own, with the same trace: it is a replayable counterexample.
    let first = run(&cluster, &counterexample.case);
    let second = run(&cluster, &detsim::testing::TestCase::from_json(&counterexample.case.to_json()).expect("json"));
    assert_eq!(first.trace_hash, second.trace_hash);
    assert!(linearizable_and_live(&first).is_err());
    // The same case passes with the write-through primary: the schedule isolates the bug, not a harness artefact.
    assert!(linearizable_and_live(&run(&self::cluster(false), &counterexample.case)).is_ok());
}

// The same property through proptest's own macro, for those who prefer it (no extra dependency:
// detsim re-exports proptest).
detsim::proptest::proptest! {
    #![proptest_config(detsim::proptest::test_runner::Config {
        cases: 8, failure_persistence: None, ..Default::default()
    })]
    #[test]
    fn write_through_primary_passes_under_the_proptest_macro(case in cluster(false).cases(&CaseSpace::default())) {
        let report = run(&cluster(false), &case);
        linearizable_and_live(&report)?;
        detsim::proptest::prop_assert!(report.op_counts().ok > 0, "some operation completed");
    }
}

#[test]
fn write_through_primary_is_also_sequential_causal_convergent_and_reads_its_writes() {
    check(&cluster(false), &CaseSpace { cases: 24, ..CaseSpace::default() }, |report| {
        report.assert_sequential(Model::Register)?;
        report.assert_causal()?;
        report.assert_session(detsim::check::SessionGuarantee::ReadYourWrites)?;
        report.assert_converged_after_heal(500)
    });
}

#[test]
fn write_back_primary_converges_although_it_is_not_linearizable() {
    // A weaker model accepts what linearizability rejects: the write lost in a crash was
    // overwritten by later writes, so after the heal every client reads the same, latest value.
    let cluster = cluster(true);
    let space = CaseSpace { cases: 64, ..CaseSpace::default() };
    let converged = |report: &detsim::testing::Report| report.assert_converged_after_heal(500);
    if let Err(counterexample) = search(&cluster, &space, converged) {
        panic!("the write-back primary converges after the heal:\n{counterexample}");
    }
    assert!(search(&cluster, &space, linearizable_and_live).is_err(), "but it is not linearizable");
}

#[test]
fn the_counterexample_has_a_report_of_the_same_run_and_check_names_it() {
    let cluster = cluster(true);
    let space = CaseSpace { cases: 64, ..CaseSpace::default() };
    let counterexample = search(&cluster, &space, linearizable_and_live).expect_err("the write-back bug fails");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("user-protocol-{}", std::process::id()));
    let report = write_report(&cluster, &counterexample.case, Some(&counterexample.message), &dir).expect("written");
    assert_eq!(report, dir.join("report.html"));
    let html = std::fs::read_to_string(&report).expect("report.html");
    assert!(html.contains("not linearizable") && html.contains("DETSIM_REPLAY="), "the verdict and the replay");
    assert!(html.contains("<svg") && !html.contains("<script src"), "charts inline, nothing fetched");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).expect("run.json")).expect("JSON");
    // The recorded run is the failing run: same trace hash as `run` computes.
    assert_eq!(info["trace_hash"], format!("{:016x}", run(&cluster, &counterexample.case).trace_hash));
    assert_eq!(info["seed"], counterexample.case.seed);
    assert_eq!(info["valid"], false);
    // The report's fault windows are where the shrunk schedule put the crash.
    let crash = counterexample.case.faults.iter().find(|w| w.fault == WindowFault::Crash { node: 0 }).expect("crash");
    let windows = info["fault_windows"].as_array().expect("fault windows");
    assert!(
        windows.iter().any(|w| w["kind"] == "crash n1"
            && w["start_ns"] == u64::from(crash.start_ms) * 1_000_000
            && w["end_ns"] == u64::from((crash.start_ms + crash.duration_ms).min(cluster.horizon_ms)) * 1_000_000),
        "{windows:?} has {crash:?}"
    );
    assert!(
        dir.join("plots").join("lamport.svg").is_file()
            && dir.join("trace.jsonl").metadata().is_ok_and(|m| m.len() > 0)
    );
    // `check` writes the same folder on failure and says where.
    let panic =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&cluster, &space, linearizable_and_live)))
            .expect_err("check panics");
    let message = panic.downcast_ref::<String>().expect("a formatted panic message");
    let line = message.lines().find_map(|l| l.trim_start().strip_prefix("report: ")).expect("a report line");
    let path = line.split(" (open it").next().expect("a path");
    assert!(path.ends_with("report.html") && std::path::Path::new(path).is_file(), "{line}");
    assert!(
        path.contains("detsim-testing/user_protocol/the_counterexample_has_a_report"),
        "the default folder is in the target directory, by test file and test: {path}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
