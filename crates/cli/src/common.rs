//! What the subcommands share: the exit-code contract, loading a scenario against the protocol
//! registry, the FILE and --seed arguments, and colours (only on a terminal, never with NO_COLOR).

use clap::Args;
use detsim_check::Validity;
use detsim_scenario::{LoadedScenario, RunError};
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The outcome is what the scenario expects.
pub const EXIT_OK: u8 = 0;
/// The outcome is not what the scenario expects (a violation, or a pass that should have failed).
pub const EXIT_UNEXPECTED: u8 = 1;
/// Bad input: a malformed scenario or results file, an impossible parameter, an unknown protocol.
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error that reaches the user as one message and an exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn bad_input(message: impl fmt::Display) -> anyhow::Error {
        anyhow::Error::new(Exit { code: EXIT_BAD_INPUT, message: message.to_string() })
    }

    pub fn unexpected(message: impl fmt::Display) -> anyhow::Error {
        anyhow::Error::new(Exit { code: EXIT_UNEXPECTED, message: message.to_string() })
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// A run error as an [`Exit`] with the run's own exit code (2 for bad input).
pub fn run_error(error: RunError) -> anyhow::Error {
    anyhow::Error::new(Exit { code: error.exit_code(), message: error.to_string() })
}

pub fn exit_code(ok: bool) -> ExitCode {
    ExitCode::from(if ok { EXIT_OK } else { EXIT_UNEXPECTED })
}

/// A scenario file and the seed to run.
#[derive(Args, Clone, Debug)]
pub struct ScenarioSeed {
    /// The scenario file (TOML; see docs/scenario-format.md).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The seed to run (default: the scenario's `seed`).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl ScenarioSeed {
    pub fn load(&self) -> anyhow::Result<(LoadedScenario, u64)> {
        let loaded = load(&self.file)?;
        let seed = self.seed.unwrap_or(loaded.scenario.seed);
        Ok((loaded, seed))
    }
}

/// Reads and validates a scenario against every registered protocol; errors exit with code 2.
pub fn load(path: &Path) -> anyhow::Result<LoadedScenario> {
    detsim_scenario::load_file(path, &detsim_protocols::registry()).map_err(Exit::bad_input)
}

/// Terminal styling: ANSI colours when stdout is a terminal and NO_COLOR is unset or empty.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    /// Colours for output written to stdout.
    pub fn stdout() -> Style {
        Style { colour: colour_allowed(std::env::var_os("NO_COLOR").as_deref()) && std::io::stdout().is_terminal() }
    }

    /// Colours for output written to stderr.
    pub fn stderr() -> Style {
        Style { colour: colour_allowed(std::env::var_os("NO_COLOR").as_deref()) && std::io::stderr().is_terminal() }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A verdict in its colour: valid green, invalid red, unknown yellow.
    pub fn verdict(self, valid: Validity) -> String {
        let text = valid.to_string();
        match valid {
            Validity::Valid => self.green(&text),
            Validity::Invalid => self.red(&text),
            Validity::Unknown => self.yellow(&text),
        }
    }
}

/// Whether colours are allowed at all: <https://no-color.org> says any non-empty NO_COLOR turns them off.
pub fn colour_allowed(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|value| value.is_empty())
}

/// Nanoseconds in a short human unit: `850us`, `3.2ms`, `1.50s`.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.0}us", ns as f64 / 1e3),
        1_000_000..=99_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        100_000_000..=999_999_999 => format!("{:.0}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_turns_colours_off_unless_empty() {
        assert!(colour_allowed(None));
        assert!(colour_allowed(Some(OsStr::new(""))));
        assert!(!colour_allowed(Some(OsStr::new("1"))));
        let plain = Style { colour: false };
        assert_eq!(plain.red("x"), "x");
        assert_eq!(Style { colour: true }.red("x"), "\x1b[31mx\x1b[0m");
    }

    #[test]
    fn human_durations_pick_a_readable_unit() {
        assert_eq!(human_ns(999), "999ns");
        assert_eq!(human_ns(850_000), "850us");
        assert_eq!(human_ns(3_210_000), "3.2ms");
        assert_eq!(human_ns(310_000_000), "310ms");
        assert_eq!(human_ns(1_500_000_000), "1.50s");
    }
}
