//! Sweeps: many seeds of one scenario on a pool of threads, with one JSON Lines record per seed.
//!
//! A record depends on the scenario and the seed only (no wall time), and the results file is
//! rewritten in seed order when the sweep ends, so the file is the same bytes whatever the number of
//! threads, and the union of the shards of a range is the same file as the unsharded sweep.
//! Records are appended as seeds finish, so an interrupted sweep resumes without redoing them.

use crate::load::LoadedScenario;
use crate::run::{replay_command, run_seed, RunError, RunOptions};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Most seeds one sweep may name (a typo such as `1..1000000000000` should not start).
pub const MAX_SWEEP_SEEDS: u64 = 100_000_000;

/// A range of seeds: `A..B` (B excluded), `A..=B` (B included) or a single `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Excluded.
    pub end: u64,
}

impl SeedRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = "expected a seed range such as 1..100 (100 excluded), 1..=100, or a single seed";
        let number =
            |part: &str| part.trim().parse::<u64>().map_err(|_| format!("invalid seed range {text:?}: {expected}"));
        let range = if let Some((start, end)) = text.split_once("..=") {
            let (start, end) = (number(start)?, number(end)?);
            let end = end.checked_add(1).ok_or_else(|| format!("seed range {text:?} ends past the largest seed"))?;
            SeedRange { start, end }
        } else if let Some((start, end)) = text.split_once("..") {
            SeedRange { start: number(start)?, end: number(end)? }
        } else {
            let seed = number(text)?;
            SeedRange { start: seed, end: seed.checked_add(1).ok_or("seed too large")? }
        };
        if range.end <= range.start {
            return Err(format!("seed range {text:?} is empty: {expected}"));
        }
        if range.len() > MAX_SWEEP_SEEDS {
            return Err(format!(
                "seed range {text:?} has {} seeds; at most {MAX_SWEEP_SEEDS} in one sweep",
                range.len()
            ));
        }
        Ok(range)
    }
}

/// One part of a sweep for one of N machines: `K/N` with K from 0 to N-1 (the numbering of a
/// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` and of `sbatch --array=0-(N-1)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = "expected K/N with 0 <= K < N, e.g. 0/4 for the first of 4 shards";
        let (index, count) = text.split_once('/').ok_or_else(|| format!("invalid shard {text:?}: {expected}"))?;
        let parse = |part: &str| part.trim().parse::<u64>().map_err(|_| format!("invalid shard {text:?}: {expected}"));
        let shard = Shard { index: parse(index)?, count: parse(count)? };
        if shard.count == 0 || shard.index >= shard.count {
            return Err(format!("invalid shard {text:?}: {expected}"));
        }
        Ok(shard)
    }
}

/// The seeds of `range` that `shard` runs: every N-th seed, starting K seeds in (round robin, so
/// slow and fast seeds spread over the shards).
pub fn shard_seeds(range: SeedRange, shard: Option<Shard>) -> Vec<u64> {
    let Shard { index, count } = shard.unwrap_or(Shard { index: 0, count: 1 });
    (range.start..range.end).filter(|seed| (seed - range.start) % count == index).collect()
}

/// One seed's result: the line written to the results file.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedRecord {
    pub seed: u64,
    /// Whether the seed came out as the scenario expects.
    pub outcome_ok: bool,
    /// The names of the checks that found a violation.
    pub violations: Vec<String>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
    pub replay: String,
    /// The JSON object, as written.
    pub json: serde_json::Value,
}

impl SeedRecord {
    /// Reads a record back from its JSON object.
    pub fn from_json(json: serde_json::Value) -> Result<SeedRecord, String> {
        let seed = json.get("seed").and_then(serde_json::Value::as_u64).ok_or("no numeric \"seed\"")?;
        let outcome_ok =
            json.get("outcome_ok").and_then(serde_json::Value::as_bool).ok_or("no boolean \"outcome_ok\"")?;
        let violations = json
            .get("violations")
            .and_then(serde_json::Value::as_array)
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let error = json.get("error").and_then(serde_json::Value::as_str).map(str::to_string);
        let replay = json.get("replay").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        Ok(SeedRecord { seed, outcome_ok, violations, error, replay, json })
    }

    /// The scenario digest the record was made from.
    pub fn digest(&self) -> Option<&str> {
        self.json.get("scenario_digest").and_then(serde_json::Value::as_str)
    }

    /// The record as one line of JSON (no newline).
    pub fn line(&self) -> String {
        serde_json::to_string(&self.json).expect("records serialise")
    }
}

/// Runs one seed of a sweep: the run's deterministic summary, or the reason it stopped.
/// Bad input (the protocol rejects the cluster) is an error for the whole sweep.
pub fn run_sweep_seed(loaded: &LoadedScenario, seed: u64) -> Result<SeedRecord, RunError> {
    let digest = loaded.digest();
    let json = match run_seed(loaded, seed, RunOptions::default()) {
        Ok(outcome) => {
            let mut json = outcome.summary_json();
            json.as_object_mut().expect("the summary is an object").insert("scenario_digest".into(), json!(digest));
            json
        }
        Err(error) if error.exit_code() == 2 => return Err(error),
        Err(RunError::Simulation { error, .. }) => json!({
            "scenario": loaded.name,
            "file": loaded.file,
            "protocol": loaded.protocol.name,
            "seed": seed,
            "valid": "unknown",
            "expect": loaded.scenario.expect.as_str(),
            "outcome_ok": false,
            "violations": [],
            "error": format!("the simulation stopped: {error}"),
            "replay": replay_command(&loaded.file, seed),
            "scenario_digest": digest,
        }),
        Err(other) => return Err(other),
    };
    Ok(SeedRecord::from_json(json).expect("a record we just made reads back"))
}

/// Why a sweep could not run (bad input: exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{path}: {message}")]
    Results { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    ResultsLine { path: String, line: usize, message: String },
}

fn results_error(path: &Path, message: impl fmt::Display) -> SweepError {
    SweepError::Results { path: path.display().to_string(), message: message.to_string() }
}

/// Reads a results file. A last line without its newline (a write cut short) is left out and
/// reported as `truncated_at`, the byte length of the complete lines.
pub fn read_results(path: &Path) -> Result<(Vec<SeedRecord>, Option<u64>), SweepError> {
    let file = File::open(path).map_err(|e| results_error(path, e))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut good_bytes = 0u64;
    let mut line_number = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| results_error(path, e))?;
        if read == 0 {
            return Ok((records, None));
        }
        line_number += 1;
        if !line.ends_with('\n') {
            return Ok((records, Some(good_bytes)));
        }
        good_bytes += read as u64;
        if line.trim().is_empty() {
            continue;
        }
        let place =
            |message: String| SweepError::ResultsLine { path: path.display().to_string(), line: line_number, message };
        let json: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| place(format!("column {}: {e}", e.column())))?;
        records.push(SeedRecord::from_json(json).map_err(place)?);
    }
}

/// Writes records sorted by seed to `path` (through a temporary file and a rename).
pub fn write_results(path: &Path, records: &[SeedRecord]) -> Result<(), SweepError> {
    let mut sorted: Vec<&SeedRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.seed);
    let mut text = String::new();
    for record in sorted {
        text.push_str(&record.line());
        text.push('\n');
    }
    let temporary = path.with_extension("jsonl.tmp");
    std::fs::write(&temporary, text).map_err(|e| results_error(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| results_error(path, e))
}

/// Merges the results of several files (the shards of one sweep): one record per seed, in seed order.
/// Files of different scenarios, or two different records for one seed, are errors.
pub fn merge_results(paths: &[PathBuf]) -> Result<Vec<SeedRecord>, SweepError> {
    let mut by_seed: BTreeMap<u64, (SeedRecord, PathBuf)> = BTreeMap::new();
    let mut digest: Option<(String, PathBuf)> = None;
    for path in paths {
        let (records, truncated) = read_results(path)?;
        if truncated.is_some() {
            return Err(results_error(
                path,
                "the last line is cut short (an interrupted sweep): resume it before merging",
            ));
        }
        for record in records {
            let record_digest = record.digest().unwrap_or_default().to_string();
            match &digest {
                None => digest = Some((record_digest, path.clone())),
                Some((first, first_path)) if *first != record_digest => {
                    return Err(results_error(
                        path,
                        format!(
                            "seed {} comes from another scenario (digest {record_digest}) than {} (digest {first})",
                            record.seed,
                            first_path.display()
                        ),
                    ))
                }
                Some(_) => {}
            }
            if let Some((existing, existing_path)) = by_seed.get(&record.seed) {
                if existing.json != record.json {
                    return Err(results_error(
                        path,
                        format!("seed {} differs from its record in {}", record.seed, existing_path.display()),
                    ));
                }
                continue;
            }
            by_seed.insert(record.seed, (record, path.clone()));
        }
    }
    Ok(by_seed.into_values().map(|(record, _)| record).collect())
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub seeds: SeedRange,
    pub shard: Option<Shard>,
    /// Worker threads.
    pub jobs: usize,
    /// Start no new seed after one comes out otherwise than expected.
    pub stop_on_failure: bool,
    /// The JSON Lines results file.
    pub results: PathBuf,
    /// Ignore (overwrite) an existing results file instead of resuming it.
    pub fresh: bool,
}

/// What a sweep produced.
#[derive(Clone, Debug)]
pub struct SweepSummary {
    /// Every record of the shard, in seed order (resumed ones included).
    pub records: Vec<SeedRecord>,
    /// Seeds of the shard found finished in the results file and not run again.
    pub resumed: usize,
    /// Seeds run now.
    pub ran: usize,
    /// Seeds of the shard not run because of --stop-on-failure.
    pub skipped: usize,
}

impl SweepSummary {
    pub fn failing(&self) -> Vec<&SeedRecord> {
        self.records.iter().filter(|r| !r.outcome_ok).collect()
    }
}

/// Progress of a sweep, reported on the calling thread as seeds finish.
pub struct Progress<'a> {
    pub record: &'a SeedRecord,
    /// Seeds of the shard finished so far (resumed ones included).
    pub done: usize,
    pub total: usize,
}

/// Runs the seeds of `options` that the results file does not hold yet, `options.jobs` at a time,
/// appending each record as it finishes and rewriting the file in seed order at the end.
pub fn sweep(
    loaded: &LoadedScenario,
    options: &SweepOptions,
    mut on_progress: impl FnMut(Progress<'_>),
) -> Result<SweepSummary, SweepError> {
    assert!(options.jobs >= 1, "at least one job");
    let path = &options.results;
    let digest = loaded.digest();
    let mut existing = Vec::new();
    if path.exists() && !options.fresh {
        let (records, truncated) = read_results(path)?;
        if let Some(length) = truncated {
            let file = OpenOptions::new().write(true).open(path).map_err(|e| results_error(path, e))?;
            file.set_len(length).map_err(|e| results_error(path, e))?;
        }
        if let Some(other) = records.iter().find(|r| r.digest() != Some(digest.as_str())) {
            return Err(results_error(
                path,
                format!(
                    "holds results of another scenario or another version of it (seed {}); pass --fresh to overwrite it or choose another --out",
                    other.seed
                ),
            ));
        }
        existing = records;
    } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| results_error(parent, e))?;
    }
    if options.fresh || !path.exists() {
        File::create(path).map_err(|e| results_error(path, e))?;
    }

    let shard_seeds = shard_seeds(options.seeds, options.shard);
    let done_seeds: BTreeSet<u64> = existing.iter().map(|r| r.seed).collect();
    let todo: Vec<u64> = shard_seeds.iter().copied().filter(|s| !done_seeds.contains(s)).collect();
    let in_shard: BTreeSet<u64> = shard_seeds.iter().copied().collect();
    let resumed = existing.iter().filter(|r| in_shard.contains(&r.seed)).count();
    let total = shard_seeds.len();
    let mut done = resumed;
    let already_failed = existing.iter().any(|r| in_shard.contains(&r.seed) && !r.outcome_ok);

    let mut appender = OpenOptions::new().append(true).open(path).map_err(|e| results_error(path, e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs)
        .thread_name(|i| format!("detsim-sweep-{i}"))
        .build()
        .map_err(|e| results_error(path, format!("cannot start {} worker threads: {e}", options.jobs)))?;
    let stop = AtomicBool::new(options.stop_on_failure && already_failed);
    let mut fresh_records = Vec::new();
    let mut first_error: Option<SweepError> = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<Result<SeedRecord, RunError>>();
        let stop = &stop;
        let todo = &todo;
        let pool = &pool;
        scope.spawn(move || {
            use rayon::prelude::*;
            pool.install(|| {
                todo.par_iter().with_max_len(1).for_each_with(sender, |sender, &seed| {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let result = run_sweep_seed(loaded, seed);
                    let failed = result.as_ref().map_or(true, |r| !r.outcome_ok);
                    if (failed && options.stop_on_failure) || result.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    // The receiver lives until every sender is gone.
                    let _ = sender.send(result);
                });
            });
        });
        for result in receiver {
            match result {
                Ok(record) => {
                    if first_error.is_none() {
                        let written = writeln!(appender, "{}", record.line()).and_then(|()| appender.flush());
                        if let Err(e) = written {
                            first_error = Some(results_error(path, e));
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    done += 1;
                    on_progress(Progress { record: &record, done, total });
                    fresh_records.push(record);
                }
                Err(error) => {
                    if first_error.is_none() {
                        first_error = Some(error.into());
                    }
                }
            }
        }
    });
    if let Some(error) = first_error {
        return Err(error);
    }
    let ran = fresh_records.len();
    let mut all = existing;
    all.extend(fresh_records);
    write_results(path, &all)?;
    let mut records: Vec<SeedRecord> = all.into_iter().filter(|r| in_shard.contains(&r.seed)).collect();
    records.sort_by_key(|r| r.seed);
    let skipped = total - records.len();
    Ok(SweepSummary { records, resumed, ran, skipped })
}

/// The default results file of a sweep: `<name>.sweep.jsonl`, or `<name>.shard-K-of-N.jsonl`.
pub fn default_results_path(loaded: &LoadedScenario, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(Shard { index, count }) => PathBuf::from(format!("{}.shard-{index}-of-{count}.jsonl", loaded.name)),
        None => PathBuf::from(format!("{}.sweep.jsonl", loaded.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_half_open_inclusive_and_single() {
        assert_eq!("1..5".parse(), Ok(SeedRange { start: 1, end: 5 }));
        assert_eq!("1..=5".parse(), Ok(SeedRange { start: 1, end: 6 }));
        assert_eq!("7".parse(), Ok(SeedRange { start: 7, end: 8 }));
        for bad in ["5..5", "5..1", "a..b", "", "1..", "..3", "-1..3", "0..=18446744073709551615"] {
            assert!(bad.parse::<SeedRange>().is_err(), "{bad}");
        }
        assert!("0..1000000000000".parse::<SeedRange>().expect_err("too many").contains("at most"));
    }

    #[test]
    fn shards_partition_the_range() {
        let range = SeedRange { start: 10, end: 33 };
        let mut union: Vec<u64> =
            (0..4).flat_map(|index| shard_seeds(range, Some(Shard { index, count: 4 }))).collect();
        union.sort_unstable();
        assert_eq!(union, (10..33).collect::<Vec<_>>());
        assert_eq!(shard_seeds(range, Some(Shard { index: 1, count: 4 }))[..3], [11, 15, 19]);
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "1", "a/b", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
