//! End-to-end tests of the workspace: `scenarios.rs` runs every curated scenario and checks its
//! expected outcome and determinism; `cli.rs` drives the built `detsim` binary (exit codes, JSON,
//! run folders, sweeps, shards, merge, resume, shrink, replay). This library holds what they share.

use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Every curated scenario file, sorted by name.
pub fn scenario_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}
