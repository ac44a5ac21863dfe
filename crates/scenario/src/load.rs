//! Reading a scenario: TOML into the typed format (syntax, unknown keys and wrong types reported by
//! the toml crate with their span), then validation of what the types cannot say (ranges, node
//! names, times), each error placed at `file:line:column` through a spanned parse of the same text.

use crate::format::Scenario;
use crate::plan::Plan;
use crate::validate::{check_names, validate, Problem, Validation};
use detsim_protocols::ProtocolEntry;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem with a scenario file, placed where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line and column (in characters), when the problem has a place.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Why a scenario could not be loaded: one or more diagnostics (bad input: exit code 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ScenarioError {
    pub fn single(file: &str, message: impl Into<String>) -> Self {
        ScenarioError {
            diagnostics: vec![Diagnostic { file: file.to_string(), line: None, column: None, message: message.into() }],
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// A scenario that parsed and validated, with the protocol it names.
#[derive(Clone)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    /// The file as the user named it (for messages and replay commands).
    pub file: String,
    /// `name`, or the file name without `.toml`.
    pub name: String,
    pub protocol: ProtocolEntry,
    /// The TOML text it was read from (to place later errors).
    pub text: String,
}

/// FNV-1a (64 bit) of a scenario's text, as 16 hex digits: sweep results carry it so that resuming
/// or merging never mixes the results of two different scenario files.
pub fn text_digest(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl LoadedScenario {
    /// The digest of the scenario's text (see [`text_digest`]).
    pub fn digest(&self) -> String {
        text_digest(&self.text)
    }

    /// Line and column of the value at a dotted `path` in the source text.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let root = DeTable::parse(&self.text).ok()?;
        Some(line_column(&self.text, span_of(&root, path).start))
    }
}

impl fmt::Debug for LoadedScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedScenario")
            .field("file", &self.file)
            .field("name", &self.name)
            .field("protocol", &self.protocol.name)
            .finish_non_exhaustive()
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut start = offset;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Reads and validates the scenario at `path` against the protocols in `registry`.
pub fn load_file(path: &Path, registry: &[ProtocolEntry]) -> Result<LoadedScenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::single(&file, format!("cannot read: {e}")))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario".into());
    load_str(&text, &file, &stem, registry)
}

/// Parses and validates scenario `text`; `file` names it in messages, `default_name` is used when
/// the scenario has no `name`.
pub fn load_str(
    text: &str,
    file: &str,
    default_name: &str,
    registry: &[ProtocolEntry],
) -> Result<LoadedScenario, ScenarioError> {
    let diagnostic_at = |span: Option<Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Diagnostic { file: file.to_string(), line, column, message }
    };
    let scenario: Scenario = toml::from_str(text).map_err(|error| ScenarioError {
        diagnostics: vec![diagnostic_at(error.span(), error.message().trim().to_string())],
    })?;
    let spans = DeTable::parse(text).ok();
    let Validation { mut problems, unresolved_names } = validate(&scenario, registry);
    let protocol = registry.iter().find(|entry| entry.name == scenario.cluster.protocol);
    if let (true, false, Some(protocol)) = (problems.is_empty(), unresolved_names.is_empty(), protocol) {
        // Names that are neither servers nor clients: the simulation knows its extra nodes.
        match Plan::build(&scenario, protocol, scenario.seed) {
            Ok(_) => {}
            Err(error) if !error.node_names.is_empty() => {
                problems.extend(check_names(&unresolved_names, &error.node_names));
                if problems.is_empty() {
                    problems.push(Problem { path: error.path.unwrap_or_default(), message: error.message });
                }
            }
            Err(error) => problems.push(Problem { path: error.path.unwrap_or_default(), message: error.message }),
        }
    }
    if !problems.is_empty() {
        let diagnostics = problems
            .into_iter()
            .map(|problem| {
                let span = spans.as_ref().map(|root| span_of(root, &problem.path));
                diagnostic_at(span, problem.message)
            })
            .collect();
        return Err(ScenarioError { diagnostics });
    }
    let protocol = registry
        .iter()
        .find(|entry| entry.name == scenario.cluster.protocol)
        .copied()
        .expect("validation checked the protocol exists");
    let name = scenario.name.clone().unwrap_or_else(|| default_name.to_string());
    Ok(LoadedScenario { scenario, file: file.to_string(), name, protocol, text: text.to_string() })
}

/// The span of the value at a dotted `path` (`faults.2.node`; numbers index arrays), or of the
/// deepest part of it that exists.
pub fn span_of(root: &Spanned<DeTable<'_>>, path: &str) -> Range<usize> {
    let mut span = root.span();
    let mut current: Option<&DeValue<'_>> = None;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let next = match (table, current, segment.parse::<usize>()) {
            (Some(t), _, _) => t.iter().find(|(key, _)| key.get_ref().as_ref() == segment).map(|(_, value)| value),
            (None, Some(DeValue::Array(array)), Ok(index)) => array.get(index),
            _ => None,
        };
        let Some(value) = next else {
            break;
        };
        span = value.span();
        current = Some(value.get_ref());
        table = match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_from_one() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        let quote = text.find('"').expect("a quote");
        assert_eq!(line_column(text, quote), (2, 6));
    }

    #[test]
    fn span_of_walks_tables_and_arrays() {
        let text = "x = 1\n[cluster]\nnodes = 3\n[[faults]]\nat = \"1s\"\n[[faults]]\nat = \"2s\"\nnode = \"n9\"\n";
        let root = DeTable::parse(text).expect("valid TOML");
        let at = |path: &str| line_column(text, span_of(&root, path).start);
        assert_eq!(at("cluster.nodes"), (3, 9));
        assert_eq!(at("faults.1.node"), (8, 8));
        assert_eq!(at("faults.0.at"), (5, 6));
        // A key that does not exist: the deepest part that does.
        assert_eq!(at("faults.1.missing").0, at("faults.1").0);
    }
}
