//! The run folder of a failing lab run: run.json, history.jsonl and trace.jsonl in the layout
//! `detsim plot` reads (docs/plots.md), plus report.html with its charts, so a student can open the
//! failure in a browser: latency over time, availability, the Lamport diagram around the fault. A
//! `detsim::testing` counterexample is written the same way (`detsim::testing::write_report`).

use detsim_core::{AnySimulation, History};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// A run folder being written: the trace streams into it while the run goes.
pub struct RunFolder {
    dir: PathBuf,
}

impl RunFolder {
    /// Creates (or empties) `dir` and streams `sim`'s trace into `dir/trace.jsonl`. Call before the run.
    pub fn start(dir: &Path, sim: &mut dyn AnySimulation) -> Result<RunFolder, String> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let trace_path = dir.join("trace.jsonl");
        let trace = File::create(&trace_path).map_err(|e| format!("{}: {e}", trace_path.display()))?;
        sim.stream_trace_to(Box::new(BufWriter::new(trace)));
        Ok(RunFolder { dir: dir.to_path_buf() })
    }

    /// Ends the run folder: flushes the trace, writes the history and `info` as run.json with the
    /// simulator's fault windows (as it applied them: `crash n1` from the crash to the restart, a
    /// partition until the heal), renders report.html. Returns the report's path.
    pub fn finish(
        self,
        sim: &mut dyn AnySimulation,
        history: &History,
        mut info: serde_json::Value,
    ) -> Result<PathBuf, String> {
        sim.finish().map_err(|e| e.to_string())?;
        if let Some(object) = info.as_object_mut() {
            object.insert("fault_windows".to_string(), fault_windows_json(&sim.fault_windows()));
        }
        write_run_folder(&self.dir, history, &info)
    }
}

/// Writes history.jsonl and run.json into `dir` (whose trace.jsonl, if any, is already there) and
/// renders report.html; returns its path.
pub fn write_run_folder(dir: &Path, history: &History, info: &serde_json::Value) -> Result<PathBuf, String> {
    let history_path = dir.join("history.jsonl");
    let file = File::create(&history_path).map_err(|e| format!("{}: {e}", history_path.display()))?;
    history.write_jsonl(BufWriter::new(file)).map_err(|e| format!("{}: {e}", history_path.display()))?;
    let info_path = dir.join("run.json");
    let text = serde_json::to_string_pretty(info).expect("run info serialises");
    std::fs::write(&info_path, text).map_err(|e| format!("{}: {e}", info_path.display()))?;
    if !dir.join("trace.jsonl").exists() {
        std::fs::write(dir.join("trace.jsonl"), "").map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    detsim_plot::render_report(dir).map_err(|e| format!("rendering the report: {e}"))
}

/// Fault windows as run.json spells them (`kind`, `start_ns`, `end_ns`; `null`: still open at the end),
/// the layout `detsim run` writes.
pub fn fault_windows_json(windows: &[(String, u64, Option<u64>)]) -> serde_json::Value {
    let spelled = windows
        .iter()
        .map(|(kind, start_ns, end_ns)| serde_json::json!({"kind": kind, "start_ns": start_ns, "end_ns": end_ns}));
    serde_json::Value::Array(spelled.collect())
}
