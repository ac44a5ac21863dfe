//! The student's first five minutes, end to end: `detsim lab new` writes every lab's crate, each
//! builds with `cargo --offline` (a path dependency on this repository and a copy of its lock file;
//! no network), and `detsim lab grade <lab> --crate DIR` runs the untouched skeleton's grader test,
//! which fails with the message that says where to start.
//!
//! The crates build into this workspace's target directory, so they reuse its registry
//! dependencies (the detsim crates themselves build once more: cargo hashes a path dependency
//! relative to the workspace root, which differs). By default the clocks and raft crates are built
//! (one of each kind of grader entry point; every skeleton's `src/lib.rs` is compiled by
//! tests/labs.rs anyway); `DETSIM_LAB_SKELETONS=all` builds every lab's crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// This workspace's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("the target directory").to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

#[test]
fn skeleton_crates_build_offline_and_the_untouched_one_fails_its_grade() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-skeletons-{}", std::process::id()));
    std::fs::remove_dir_all(&root).ok();
    let chosen = std::env::var("DETSIM_LAB_SKELETONS").unwrap_or_else(|_| "clocks,raft".to_string());
    let labs: Vec<detsim::labs::Lab> = detsim::labs::all()
        .into_iter()
        .filter(|lab| chosen == "all" || chosen.split(',').any(|name| name.trim() == lab.name))
        .collect();
    assert!(labs.iter().any(|lab| lab.name == "clocks"), "the clocks crate is built and graded below");
    for lab in labs {
        let dir = root.join(format!("lab-{}", lab.name));
        let output = Command::new(env!("CARGO_BIN_EXE_detsim"))
            .args(["lab", "new", lab.name])
            .arg(&dir)
            .output()
            .expect("detsim runs");
        assert_eq!(output.status.code(), Some(0), "lab new {}: {}", lab.name, text(&output));
        let build = Command::new(cargo())
            .args(["build", "--offline", "--tests", "--quiet"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .expect("cargo runs");
        assert!(build.status.success(), "the {} skeleton must build offline:\n{}", lab.name, text(&build));
    }
    let output = Command::new(env!("CARGO_BIN_EXE_detsim"))
        .args(["lab", "grade", "clocks", "--seeds", "2", "--no-reports", "--crate"])
        .arg(root.join("lab-clocks"))
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("detsim runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let card = text(&output);
    for needle in [
        "== detsim lab clocks",
        "failed `lamport clock condition` on 2 of 2 runs",
        "hint: Lamport (1978)",
        "replay: DETSIM_LAB_REPLAY='",
        "score: 0/4 runs passed: FAIL",
    ] {
        assert!(card.contains(needle), "the untouched skeleton's grade lacks {needle:?}:\n{card}");
    }
    std::fs::remove_dir_all(&root).ok();
}
