//! `detsim lab`: list the teaching labs, write a lab's skeleton crate, and grade the reference, a
//! mutant, or a student's crate. Exit codes: 0 the grade passed, 1 it failed, 2 bad input.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use detsim::labs::{self, GradeOptions, Lab, Replay, Variant};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `detsim lab`.
#[derive(Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Subcommand)]
pub enum LabCommand {
    /// List the labs with their reference implementations and mutants.
    List,
    /// Write a lab's skeleton crate (Node stubs and a test that runs the grader) into DIR.
    New(NewArgs),
    /// Grade a lab: the reference implementation (default), one of its mutants, or a student's crate.
    Grade(GradeArgs),
}

/// Arguments of `detsim lab new`.
#[derive(Args)]
pub struct NewArgs {
    /// The lab (`detsim lab list` names them).
    pub lab: String,
    /// Where the crate goes (default: ./lab-<lab>). Must not exist, or be empty.
    pub dir: Option<PathBuf>,
}

/// Arguments of `detsim lab grade`.
#[derive(Args)]
pub struct GradeArgs {
    /// The lab (`detsim lab list` names them).
    pub lab: String,
    /// Grade this mutant of the reference instead of the reference itself.
    #[arg(long, conflicts_with_all = ["params", "crate_dir"])]
    pub mutant: Option<String>,
    /// Grade the reference with these parameters (a JSON object).
    #[arg(long, conflicts_with = "crate_dir")]
    pub params: Option<String>,
    /// Grade the student crate in DIR (runs its `cargo test --offline --test grade`).
    #[arg(long = "crate", value_name = "DIR")]
    pub crate_dir: Option<PathBuf>,
    /// Seeds per scenario.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Run only this failure again (the JSON a score card's replay line shows).
    #[arg(long)]
    pub replay: Option<String>,
    /// Where failing runs' folders (report.html, history, trace) are written.
    #[arg(long, value_name = "DIR", default_value = "detsim-lab-reports")]
    pub reports: PathBuf,
    /// Write no run folders.
    #[arg(long)]
    pub no_reports: bool,
    /// Also write the run folder (report.html with its plots) of each scenario's first seed.
    #[arg(long, conflicts_with = "no_reports")]
    pub plots: bool,
    /// Print the score card as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `detsim lab`.
pub fn run(args: &LabArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        LabCommand::List => {
            list();
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::New(new) => new_crate(new).map(|()| ExitCode::SUCCESS),
        LabCommand::Grade(grade) => grade_lab(grade),
    }
}

fn find_lab(name: &str) -> anyhow::Result<Lab> {
    labs::find(name).ok_or_else(|| {
        let names: Vec<&str> = labs::all().iter().map(|l| l.name).collect();
        anyhow!("unknown lab {name:?} (labs: {})", names.join(", "))
    })
}

fn list() {
    for lab in labs::all() {
        println!("{:>2}  {:<15} {}", lab.number, lab.name, lab.title);
        println!("    reference: {}", lab.reference);
        println!("    guide:     {}", lab.guide);
        let mutants: Vec<&str> = lab.mutants.iter().map(|m| m.name).collect();
        println!("    mutants:   {}", mutants.join(", "));
    }
}

/// The repository this binary was built from (the skeleton's path dependency points into it).
fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The skeleton crate's manifest: a path dependency on this repository's `detsim`, its own
/// `[workspace]`, and detsim's workspace profiles, down to the opt-level of each detsim crate (which
/// are workspace members there and dependencies here), so that a crate built with
/// `CARGO_TARGET_DIR` pointing at detsim's `target/` reuses every artifact already built.
pub fn skeleton_manifest(lab: &Lab, detsim_path: &Path, local_crates: &[String]) -> String {
    let path = detsim_path.display().to_string().replace('\\', "/");
    let mut manifest = format!(
        "[package]\nname = \"lab-{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\
         description = \"detsim lab {number}: {title}\"\n\n\
         [dependencies]\ndetsim = {{ path = \"{path}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
         # A workspace of its own, so the crate builds wherever it is.\n[workspace]\n\n\
         # The simulator runs a lot of events: optimise a little, as detsim's own workspace does.\n\
         [profile.dev]\nopt-level = 1\n[profile.dev.package.\"*\"]\nopt-level = 2\n",
        name = lab.name,
        number = lab.number,
        title = lab.title,
    );
    for local in local_crates {
        manifest.push_str(&format!("[profile.dev.package.{local}]\nopt-level = 1\n"));
    }
    manifest
}

/// The detsim crates a lab crate builds: `detsim` and the `detsim-*` crates it depends on (read
/// from crates/cli/Cargo.toml).
fn local_crates(root: &Path) -> anyhow::Result<Vec<String>> {
    let manifest = root.join("crates/cli/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| manifest.display().to_string())?;
    let mut crates = vec!["detsim".to_string()];
    for line in text.lines() {
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        if name.starts_with("detsim-") && !crates.contains(&name) {
            crates.push(name);
        }
    }
    Ok(crates)
}

fn new_crate(args: &NewArgs) -> anyhow::Result<()> {
    let lab = find_lab(&args.lab)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(format!("lab-{}", lab.name)));
    if dir.exists() && std::fs::read_dir(&dir).with_context(|| dir.display().to_string())?.next().is_some() {
        bail!("{} exists and is not empty; choose another directory", dir.display());
    }
    let root = repository_root().canonicalize().context("finding the detsim repository")?;
    let lock = root.join("Cargo.lock");
    let lock_text = std::fs::read_to_string(&lock)
        .with_context(|| format!("{}: the workspace lock file the skeleton builds with", lock.display()))?;
    let write = |relative: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::write(&path, text).with_context(|| path.display().to_string())
    };
    write("Cargo.toml", &skeleton_manifest(&lab, &root.join("crates/cli"), &local_crates(&root)?))?;
    // The workspace's lock file: every dependency at the version already on this machine, so the
    // crate builds with `--offline` (cargo drops the entries it does not need).
    write("Cargo.lock", &lock_text)?;
    for (relative, text) in lab.skeleton {
        write(relative, text)?;
    }
    let guide = root.join(lab.guide);
    write(
        "README.md",
        &format!(
            "# detsim lab {number}: {title}\n\nThe guide: {guide}\n\n\
             - Fill in the TODOs in `src/lib.rs`.\n\
             - `cargo test --offline` runs the grader (20 seeds per scenario); \
             `cargo test --offline -- --nocapture` also shows the score card when it passes.\n\
             - `DETSIM_LAB_SEEDS=200 cargo test --offline` grades on more seeds.\n\
             - A failure prints its seed, the shrunk fault schedule, a command that replays it alone \
             (`DETSIM_LAB_REPLAY=... cargo test --offline`), and a report folder under `target/detsim-lab/` \
             (open its `report.html`).\n\
             - `detsim lab grade {name} --crate .` does the same from the detsim command line.\n",
            number = lab.number,
            title = lab.title,
            guide = guide.display(),
            name = lab.name,
        ),
    )?;
    println!("wrote lab {} ({}) to {}", lab.name, lab.title, dir.display());
    println!("next: cd {} && cargo test --offline", dir.display());
    println!("guide: {}", guide.display());
    Ok(())
}

fn grade_lab(args: &GradeArgs) -> anyhow::Result<ExitCode> {
    let lab = find_lab(&args.lab)?;
    if let Some(dir) = &args.crate_dir {
        return grade_crate(&lab, dir, args);
    }
    let variant =
        match (&args.mutant, &args.params) {
            (Some(name), _) => {
                let names: Vec<&str> = lab.mutants.iter().map(|m| m.name).collect();
                Variant::Mutant(lab.mutant(name).ok_or_else(|| {
                    anyhow!("lab {} has no mutant {name:?} (mutants: {})", lab.name, names.join(", "))
                })?)
            }
            (None, Some(params)) => {
                let value: serde_json::Value = serde_json::from_str(params)
                    .map_err(|e| anyhow!("--params is not JSON: {e} (at column {})", e.column()))?;
                Variant::Params(value)
            }
            (None, None) => Variant::Reference,
        };
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let replay = args.replay.as_deref().map(Replay::from_json).transpose().map_err(|e| anyhow!("--replay: {e}"))?;
    let options = GradeOptions {
        seeds: args.seeds,
        first_seed: args.first_seed,
        replay,
        replay_style: lab.replay_style(&variant),
        report_dir: (!args.no_reports).then(|| args.reports.clone()),
        plots: args.plots,
        ..GradeOptions::default()
    };
    let card = lab.grade(&variant, &options).map_err(|e| anyhow!(e))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&card.to_json()).expect("score cards serialise"));
    } else {
        print!("{card}");
    }
    Ok(if card.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Grades a student crate by running its grader test with cargo.
fn grade_crate(lab: &Lab, dir: &Path, args: &GradeArgs) -> anyhow::Result<ExitCode> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{}: no Cargo.toml (make one with `detsim lab new {}`)", dir.display(), lab.name);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(dir).args(["test", "--offline", "--test", "grade", "--", "--nocapture"]);
    command.env(labs::LAB_SEEDS_ENV, args.seeds.to_string());
    if let Some(replay) = &args.replay {
        Replay::from_json(replay).map_err(|e| anyhow!("--replay: {e}"))?;
        command.env(labs::LAB_REPLAY_ENV, replay);
    }
    if args.plots {
        command.env(labs::LAB_PLOTS_ENV, "1");
    }
    if !args.no_reports {
        let reports = std::env::current_dir().context("the current directory")?.join(&args.reports);
        command.env(labs::LAB_REPORTS_ENV, reports);
    }
    let status = command.status().context("running cargo test in the lab crate")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
