//! The student's first five minutes, end to end, for every lab: `detsim lab new` writes the lab's
//! crate, it builds with `cargo --offline` (a path dependency on this repository and a copy of its
//! lock file; no network), and `detsim lab grade <lab> --crate DIR` runs the untouched skeleton's
//! grader test, which fails with a score card that says where to start: for each failure the seed,
//! the shrunk schedule, the replay command and the report folder.
//!
//! The crates build into this workspace's target directory, so they reuse its registry
//! dependencies; the detsim crates themselves build once more (cargo hashes a path dependency
//! relative to the workspace root, which differs), once for all the lab crates, which sit side by
//! side. After that each lab crate costs a couple of seconds. `DETSIM_LAB_SKELETONS=clocks,raft`
//! builds only those.

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
    let chosen = std::env::var("DETSIM_LAB_SKELETONS").unwrap_or_else(|_| "all".to_string());
    let labs: Vec<detsim::labs::Lab> = detsim::labs::all()
        .into_iter()
        .filter(|lab| chosen == "all" || chosen.split(',').any(|name| name.trim() == lab.name))
        .collect();
    assert!(!labs.is_empty(), "DETSIM_LAB_SKELETONS={chosen:?} names no lab");
    for lab in &labs {
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
    for lab in &labs {
        let reports = root.join(format!("reports-{}", lab.name));
        let output = Command::new(env!("CARGO_BIN_EXE_detsim"))
            .args(["lab", "grade", lab.name, "--seeds", "2", "--reports"])
            .arg(&reports)
            .arg("--crate")
            .arg(root.join(format!("lab-{}", lab.name)))
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .expect("detsim runs");
        let card = text(&output);
        assert_eq!(output.status.code(), Some(1), "the untouched {} skeleton fails its grade:\n{card}", lab.name);
        for needle in [
            format!("== detsim lab {}", lab.name),
            "hint: ".to_string(),
            "shrunk fault schedule".to_string(),
            "replay: DETSIM_LAB_REPLAY='".to_string(),
            "cargo test --offline".to_string(),
            "report: ".to_string(),
            "runs passed: FAIL".to_string(),
        ] {
            assert!(card.contains(&needle), "the untouched {} skeleton's grade lacks {needle:?}:\n{card}", lab.name);
        }
        // Every report line names a report.html that was written.
        for line in card.lines().filter_map(|l| l.trim_start().strip_prefix("report: ")) {
            assert!(Path::new(line).is_file(), "lab {}: {line} does not exist:\n{card}", lab.name);
        }
        assert!(card.contains("score: 0/"), "lab {}: no run of the untouched skeleton passes:\n{card}", lab.name);
        if lab.name == "clocks" {
            for needle in ["failed `lamport clock condition` on 2 of 2 runs", "hint: Lamport (1978)", "score: 0/4 runs"]
            {
                assert!(card.contains(needle), "the untouched clocks skeleton's grade lacks {needle:?}:\n{card}");
            }
        }
    }
    std::fs::remove_dir_all(&root).ok();
}
