//! End-to-end tests of `detsim check` through the built binary: verdicts and exit codes (0, 1, 2,
//! 3, the worst over several files), every input format, `--json` lines, errors with
//! file:line:column, and re-check commands that reproduce the verdict.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The porcupine-kv data set (beside the main checkout, or one level up from a worktree).
fn data(file: &str) -> PathBuf {
    let candidates = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/porcupine-kv"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../shared/data/porcupine-kv"),
    ];
    let dir = candidates.iter().map(PathBuf::from).find(|dir| dir.join("c01-ok.txt").is_file());
    dir.unwrap_or_else(|| panic!("the porcupine-kv data set is missing; looked in {candidates:?}")).join(file)
}

/// Writes `text` to a file of this test run and returns its path.
fn write(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check_cli").join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the test directory");
    std::fs::write(&path, text).expect("write the test history");
    path
}

fn detsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detsim")).args(args).output().expect("run detsim")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = detsim(args);
    let code = output.status.code().expect("detsim exits with a code");
    (code, String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 paths")
}

#[test]
fn porcupine_files_give_their_verdicts_partitioned_and_not() {
    for (file, code) in [("c01-ok.txt", 0), ("c01-bad.txt", 1), ("c10-ok.txt", 0), ("c10-bad.txt", 1)] {
        let file = data(file);
        let (got, stdout, stderr) = run(&["check", path(&file), "--model", "kv"]);
        assert_eq!(got, code, "{file:?}\n{stdout}{stderr}");
        let (got, stdout, stderr) = run(&["check", path(&file), "--model", "kv", "--no-partition"]);
        assert_eq!(got, code, "{file:?} --no-partition\n{stdout}{stderr}");
    }
}

#[test]
fn violation_report_has_evidence_and_a_recheck_command_that_reproduces_it() {
    let file = data("c01-bad.txt");
    let (code, stdout, _) = run(&["check", path(&file), "--model", "kv"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("INVALID (38 operations)"), "{stdout}");
    assert!(stdout.contains("longest linearizable prefix"), "{stdout}");
    assert!(stdout.contains("cannot place: #29 p0 get \"7\""), "{stdout}");
    let recheck = stdout.lines().find_map(|line| line.trim().strip_prefix("re-check: ")).expect("a re-check line");
    let words: Vec<&str> = recheck.split(' ').collect();
    assert_eq!(&words[..2], ["detsim", "check"], "{recheck}");
    let (again, again_stdout, _) = run(&words[1..]);
    assert_eq!(again, 1, "{recheck}\n{again_stdout}");
}

#[test]
fn json_prints_one_object_per_file_and_the_worst_exit_code() {
    let ok = data("c01-ok.txt");
    let bad = data("c10-bad.txt");
    let (code, stdout, _) = run(&["check", path(&ok), path(&bad), "--model", "kv", "--json"]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("each line is a JSON object")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["file"], path(&ok));
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["ops"], 58);
    assert!(lines[0]["elapsed_s"].as_f64().is_some_and(|s| s >= 0.0));
    assert_eq!(lines[1]["valid"], false);
    assert_eq!(lines[1]["ops"], 405);
    assert!(lines[1]["recheck"].as_str().is_some_and(|r| r.starts_with("detsim check")));
    assert!(lines[1]["checks"][0]["counterexample"]["unplaceable"]["id"].is_number());
}

/// Twelve concurrent writes and a read nobody wrote: exhausting, so a zero budget leaves it unknown.
fn hard_history() -> String {
    let mut text = String::new();
    for p in 0..12 {
        text.push_str(&format!("{{:process {p}, :type :invoke, :f :write, :value {p}}}\n"));
    }
    text.push_str(
        "{:process 12, :type :invoke, :f :read, :value nil}\n{:process 12, :type :ok, :f :read, :value 99}\n",
    );
    for p in 0..12 {
        text.push_str(&format!("{{:process {p}, :type :ok, :f :write, :value {p}}}\n"));
    }
    text
}

#[test]
fn exit_codes_combine_as_the_worst_over_files() {
    let ok = data("c01-ok.txt");
    let bad = data("c01-bad.txt");
    let hard = write("hard.edn", &hard_history());
    let malformed = write("malformed.edn", "{:process 0, :type :invoke, :f :get, :key \"1\"}\n{:process 0 :type}\n");
    let check = |files: &[&Path], extra: &[&str]| {
        let mut args = vec!["check"];
        args.extend(files.iter().map(|f| path(f)));
        args.extend(["--model", "kv"]);
        args.extend(extra);
        run(&args).0
    };
    assert_eq!(check(&[&hard], &["--timeout", "0s"]), 3);
    assert_eq!(check(&[&hard], &[]), 1);
    assert_eq!(check(&[&ok, &hard], &["--timeout", "0s"]), 3);
    assert_eq!(check(&[&hard, &bad], &["--timeout", "0s"]), 1);
    assert_eq!(check(&[&bad, &malformed, &hard], &["--timeout", "0s"]), 2);
    assert_eq!(check(&[&ok, &ok], &[]), 0);
    let (code, stdout, _) = run(&["check", path(&hard), "--model", "kv", "--timeout", "0s", "--json"]);
    assert_eq!(code, 3);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(line["valid"], "unknown");
}

#[test]
fn bad_input_is_an_error_with_file_line_and_column() {
    let malformed = write(
        "bad-line.edn",
        "{:process 0, :type :invoke, :f :get, :key \"1\"}\n{:process 0, :type :bogus, :f :get}\n",
    );
    let (code, stdout, stderr) = run(&["check", path(&malformed), "--model", "kv"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("{}:2:1: unknown :type :bogus", path(&malformed))), "{stderr}");
    // A well-formed file that is not a history of sequential processes: the record's line.
    let unpaired = write(
        "unpaired.edn",
        "{:process 0, :type :invoke, :f :get, :key \"1\"}\n{:process 1, :type :ok, :f :get, :key \"1\"}\n",
    );
    let (code, _, stderr) = run(&["check", path(&unpaired), "--model", "kv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("{}:2:1:", path(&unpaired))), "{stderr}");
    let wrong_model =
        write("wrong-model.edn", "{:process 0, :type :invoke, :f :dequeue}\n{:process 0, :type :ok, :f :dequeue}\n");
    let (code, _, stderr) = run(&["check", path(&wrong_model), "--model", "register"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no operation \"dequeue\""), "{stderr}");
    let (code, _, stderr) = run(&["check", "/no/such/history.edn", "--model", "kv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read"), "{stderr}");
    let (code, _, _) = run(&["check", path(&malformed), "--model", "tree"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["check", path(&malformed), "--model", "kv", "--consistency", "serializable"]);
    assert_eq!(code, 2);
    let (code, stdout, _) = run(&["check", path(&malformed), "--model", "kv", "--json"]);
    assert_eq!(code, 2);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!((line["line"].as_u64(), line["column"].as_u64()), (Some(2), Some(1)));
}

#[test]
fn every_input_format_is_read() {
    let jsonl = write(
        "history.jsonl",
        "{\"index\":0,\"time_ns\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"index\":1,\"time_ns\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
         {\"index\":2,\"time_ns\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n\
         {\"index\":3,\"time_ns\":4,\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n",
    );
    let log = write(
        "jepsen.log",
        "2017-01-01 INFO  jepsen.util - 3\t:invoke\t:cas\t[nil 4]\n\
         INFO  jepsen.util - 3\t:ok\t:cas\t[nil 4]\n\
         INFO  jepsen.util - 0 :invoke :read nil\n\
         INFO  jepsen.util - 0 :ok :read 4\n\
         INFO  jepsen.util - 4\t:invoke\t:write\t1\n\
         INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n",
    );
    let vector = write(
        "history.edn",
        "[{:type :invoke, :f :write, :value 3, :process 0, :time 10}\n\
         {:type :info, :f :start, :process :nemesis}\n\
         {:type :ok, :f :write, :value 3, :process 0, :time 20}\n\
         {:type :invoke, :f :read, :value nil, :process 1, :time 30}\n\
         {:type :ok, :f :read, :value 3, :process 1, :time 40}]\n",
    );
    for (file, format) in [(&jsonl, "jsonl"), (&log, "jepsen-log"), (&vector, "edn")] {
        let (code, stdout, stderr) = run(&["check", path(file), "--model", "cas-register"]);
        assert_eq!(code, 0, "{file:?}\n{stdout}{stderr}");
        let (code, stdout, stderr) = run(&["check", path(file), "--model", "cas-register", "--format", format]);
        assert_eq!(code, 0, "{file:?} --format {format}\n{stdout}{stderr}");
    }
    // Forcing the wrong format is an error, not a verdict.
    let (code, _, _) = run(&["check", path(&vector), "--model", "cas-register", "--format", "jsonl"]);
    assert_eq!(code, 2);
}

#[test]
fn strict_cas_changes_the_reading_of_a_failed_cas() {
    let file = write(
        "failed-cas.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n\
         {:process 0, :type :invoke, :f :cas, :value [1 2]}\n{:process 0, :type :fail, :f :cas, :value [1 2]}\n",
    );
    assert_eq!(run(&["check", path(&file), "--model", "cas-register"]).0, 0);
    let (code, stdout, _) = run(&["check", path(&file), "--model", "cas-register", "--strict-cas"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("--strict-cas"), "the re-check keeps the flag: {stdout}");
}

#[test]
fn weaker_models_and_transactions() {
    // p1 sees y = 2, which p0 wrote after x = 1, and then the initial x: not causal. Each session
    // guarantee holds on its own, and the final reads include every write.
    let causal_bad = write(
        "causal.edn",
        "{:process 0, :type :invoke, :f :write, :key \"x\", :value 1}\n{:process 0, :type :ok, :f :write, :key \"x\", :value 1}\n\
         {:process 0, :type :invoke, :f :write, :key \"y\", :value 2}\n{:process 0, :type :ok, :f :write, :key \"y\", :value 2}\n\
         {:process 1, :type :invoke, :f :read, :key \"y\"}\n{:process 1, :type :ok, :f :read, :key \"y\", :value 2}\n\
         {:process 1, :type :invoke, :f :read, :key \"x\"}\n{:process 1, :type :ok, :f :read, :key \"x\", :value nil}\n\
         {:process 1, :type :invoke, :f :read, :key \"x\"}\n{:process 1, :type :ok, :f :read, :key \"x\", :value 1}\n",
    );
    let (code, stdout, _) = run(&["check", path(&causal_bad), "--model", "register", "--consistency", "causal"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("WriteCOInitRead"), "{stdout}");
    let (code, stdout, _) = run(&["check", path(&causal_bad), "--model", "register", "--consistency", "session"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.matches(": valid").count(), 4, "four session guarantees: {stdout}");
    let (code, stdout, _) =
        run(&["check", path(&causal_bad), "--model", "register", "--consistency", "eventual", "--json"]);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(line["checks"][0]["checker"], "eventual");
    let skew = write(
        "write-skew.edn",
        "{:process 0, :type :invoke, :f :txn, :value [[:r :x nil] [:w :y 1]]}\n\
         {:process 1, :type :invoke, :f :txn, :value [[:r :y nil] [:w :x 1]]}\n\
         {:process 0, :type :ok, :f :txn, :value [[:r :x nil] [:w :y 1]]}\n\
         {:process 1, :type :ok, :f :txn, :value [[:r :y nil] [:w :x 1]]}\n",
    );
    let (code, stdout, _) = run(&["check", path(&skew), "--model", "rw-register"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("strict-serializable (rw-register): INVALID"), "{stdout}");
    assert!(stdout.contains("G2-item: cycle #0 -rw-> #1 -rw-> #0"), "{stdout}");
}

#[test]
fn availability_metrics_and_threshold() {
    let file = write(
        "availability.edn",
        "{:process 0, :type :invoke, :f :write, :value 1, :time 0}\n{:process 0, :type :ok, :f :write, :value 1, :time 10}\n\
         {:process 1, :type :invoke, :f :write, :value 2, :time 20}\n{:process 1, :type :info, :f :write, :value 2, :time 90}\n\
         {:process 0, :type :invoke, :f :read, :time 100}\n{:process 0, :type :ok, :f :read, :value 1, :time 110}\n",
    );
    let (code, stdout, _) = run(&[
        "check",
        path(&file),
        "--model",
        "register",
        "--consistency",
        "availability",
        "--fault-window",
        "15ns..95ns",
        "--json",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    let report = &line["availability"];
    assert_eq!(report["overall"]["ok"], 2);
    assert_eq!(report["unknown_outcomes"], 1);
    assert_eq!(report["inside_faults"]["ops"], 1);
    assert_eq!(report["latency"]["max_ns"], 10);
    let (code, stdout, _) = run(&[
        "check",
        path(&file),
        "--model",
        "register",
        "--consistency",
        "linearizable,availability",
        "--min-availability",
        "0.9",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("66.7% of operations succeeded, below the required 90.0%"), "{stdout}");
}
