//! `detsim merge SHARD...`: joins the results files of a sharded sweep into one, in seed order —
//! the same bytes as the unsharded sweep — and summarises the failing seeds.

use crate::common::{exit_code, Exit, Style};
use clap::Args;
use detsim_scenario::sweep::write_results;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `detsim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Results files of `detsim sweep --shard K/N` (JSON Lines).
    #[arg(value_name = "RESULTS", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged results here (JSON Lines, one object per seed in seed order).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print one JSON object with the totals instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `detsim merge`; exit 1 when some seed did not come out as expected.
pub fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let records = detsim_scenario::merge_results(&args.files).map_err(Exit::bad_input)?;
    write_results(&args.out, &records).map_err(Exit::bad_input)?;
    let failing: Vec<_> = records.iter().filter(|r| !r.outcome_ok).collect();
    if args.json {
        let totals = serde_json::json!({
            "results": args.out.display().to_string(),
            "files": args.files.len(),
            "total": records.len(),
            "failing": failing.iter().map(|r| r.seed).collect::<Vec<_>>(),
            "replay": failing.iter().map(|r| r.replay.clone()).collect::<Vec<_>>(),
        });
        println!("{totals}");
    } else {
        let style = Style::stdout();
        let (low, high) = (records.first().map_or(0, |r| r.seed), records.last().map_or(0, |r| r.seed));
        println!(
            "merged {} files into {}: {} seeds ({low}..={high})",
            args.files.len(),
            args.out.display(),
            records.len()
        );
        if failing.is_empty() {
            println!("{}", style.green("every seed came out as expected"));
        } else {
            println!("{}", style.red(&format!("{} seeds did not come out as expected:", failing.len())));
            for record in &failing {
                println!("  seed {:<8} {}", record.seed, record.replay);
            }
        }
    }
    Ok(exit_code(failing.is_empty()))
}
