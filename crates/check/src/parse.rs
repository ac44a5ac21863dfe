//! Importers: the native JSON Lines history, Jepsen/Knossos EDN op maps (one a line, or a whole
//! `history.edn` vector) and Jepsen console logs, all into a [`History`], with line:column errors.

use detsim_core::history::{EventType, History, HistoryEvent, ProcessId, Value};
use std::fmt;
use std::str::FromStr;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The native history: one JSON `HistoryEvent` a line.
    Jsonl,
    /// EDN op maps, one a line, or a whole EDN vector of op maps (Jepsen's `history.edn`).
    Edn,
    /// Jepsen console log lines: `INFO  jepsen.util - 3 :invoke :cas [1 4]` (tab or space separated).
    JepsenLog,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "jepsen-log" | "log" => Ok(Format::JepsenLog),
            other => Err(format!("unknown history format {other:?} (expected jsonl, edn or jepsen-log)")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        })
    }
}

/// A history that cannot be read: where (1-based line and column) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        ParseError { line, column, message: message.into() }
    }
}

/// A parsed history with, for each event, the 1-based line it came from (for error messages).
#[derive(Clone, Debug, Default)]
pub struct ParsedHistory {
    pub history: History,
    pub event_lines: Vec<usize>,
}

/// Guesses the format from the first meaningful line.
pub fn detect_format(text: &str) -> Option<Format> {
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.contains("jepsen.util") {
            return Some(Format::JepsenLog);
        }
        if trimmed.starts_with('[') {
            return Some(Format::Edn);
        }
        if let Some(rest) = trimmed.strip_prefix('{') {
            let rest = rest.trim_start();
            return Some(if rest.starts_with('"') || rest.starts_with('}') { Format::Jsonl } else { Format::Edn });
        }
        return None;
    }
    None
}

/// Reads a history in `format`, or in the format detected from its text when `format` is `None`.
pub fn parse_history(text: &str, format: Option<Format>) -> Result<History, ParseError> {
    parse_history_with_lines(text, format).map(|parsed| parsed.history)
}

/// Like [`parse_history`], and also gives the line each event came from.
pub fn parse_history_with_lines(text: &str, format: Option<Format>) -> Result<ParsedHistory, ParseError> {
    let format = match format {
        Some(format) => format,
        None => match detect_format(text) {
            Some(format) => format,
            None if text.trim().is_empty() => return Ok(ParsedHistory::default()),
            None => {
                let line = text.lines().position(|l| !l.trim().is_empty()).map_or(1, |i| i + 1);
                return Err(ParseError::new(
                    line,
                    1,
                    "cannot tell the history format (expected JSON Lines, EDN op maps or a Jepsen log); use --format",
                ));
            }
        },
    };
    match format {
        Format::Jsonl => parse_jsonl(text),
        Format::Edn => parse_edn(text),
        Format::JepsenLog => parse_jepsen_log(text),
    }
}

fn parse_jsonl(text: &str) -> Result<ParsedHistory, ParseError> {
    let mut parsed = ParsedHistory::default();
    for (line_index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut event: HistoryEvent = serde_json::from_str(line)
            .map_err(|error| ParseError::new(line_index + 1, error.column().max(1), error.to_string()))?;
        event.index = parsed.history.events.len() as u64;
        parsed.history.events.push(event);
        parsed.event_lines.push(line_index + 1);
    }
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------------------
// EDN

/// An EDN datum as far as histories need it.
#[derive(Clone, Debug, PartialEq)]
enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// What kind of datum this is, for error messages.
    fn describe(&self) -> String {
        match self {
            Edn::Nil => "nil".into(),
            Edn::Bool(b) => format!("{b}"),
            Edn::Int(i) => format!("the number {i}"),
            Edn::Float(f) => format!("the number {f}"),
            Edn::Str(s) => format!("the string {s:?}"),
            Edn::Keyword(k) => format!("the keyword :{k}"),
            Edn::Symbol(s) => format!("the symbol {s}"),
            Edn::Vector(_) => "a vector".into(),
            Edn::Map(_) => "a map".into(),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Edn::Nil => Value::Nil,
            Edn::Bool(b) => Value::Bool(b),
            Edn::Int(i) => Value::Int(i),
            Edn::Float(s) | Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::Str(s),
            Edn::Vector(items) => Value::List(items.into_iter().map(Edn::into_value).collect()),
            Edn::Map(pairs) => {
                Value::List(pairs.into_iter().map(|(k, v)| Value::List(vec![k.into_value(), v.into_value()])).collect())
            }
        }
    }
}

/// A small EDN reader that tracks line and column.
struct EdnReader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
    line: usize,
    line_start: usize,
    /// How deeply the value being read is nested (bounded, so deep input cannot overflow the stack).
    depth: usize,
}

/// The deepest nesting an EDN value may have; op maps need three or four levels.
const MAX_EDN_DEPTH: usize = 128;

impl<'a> EdnReader<'a> {
    fn new(text: &'a str, first_line: usize) -> Self {
        EdnReader { bytes: text.as_bytes(), text, position: 0, line: first_line, line_start: 0, depth: 0 }
    }

    fn column(&self) -> usize {
        self.text[self.line_start..self.position].chars().count() + 1
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.line, self.column(), message)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn bump(&mut self) {
        if self.bytes[self.position] == b'\n' {
            self.line += 1;
            self.line_start = self.position + 1;
        }
        self.position += 1;
    }

    fn skip_blank(&mut self) {
        while let Some(byte) = self.peek() {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => self.bump(),
                b';' => {
                    while let Some(byte) = self.peek() {
                        if byte == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_blank();
        self.peek().is_none()
    }

    fn read(&mut self) -> Result<Edn, ParseError> {
        self.depth += 1;
        let result = if self.depth > MAX_EDN_DEPTH {
            Err(self.error(format!("values nested more than {MAX_EDN_DEPTH} deep")))
        } else {
            self.read_nested()
        };
        self.depth -= 1;
        result
    }

    fn read_nested(&mut self) -> Result<Edn, ParseError> {
        self.skip_blank();
        let Some(byte) = self.peek() else {
            return Err(self.error("unexpected end of input, expected an EDN value"));
        };
        match byte {
            b'{' => {
                self.bump();
                let mut pairs = Vec::new();
                loop {
                    self.skip_blank();
                    match self.peek() {
                        Some(b'}') => {
                            self.bump();
                            return Ok(Edn::Map(pairs));
                        }
                        None => return Err(self.error("unexpected end of input inside a map, expected `}`")),
                        _ => {}
                    }
                    let key = self.read()?;
                    self.skip_blank();
                    if self.peek() == Some(b'}') {
                        return Err(self.error("map has a key without a value"));
                    }
                    let value = self.read()?;
                    pairs.push((key, value));
                }
            }
            b'[' | b'(' => {
                let close = if byte == b'[' { b']' } else { b')' };
                let opened = (self.line, self.column());
                self.bump();
                self.read_sequence(close, opened).map(Edn::Vector)
            }
            b'#' => {
                let opened = (self.line, self.column());
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        self.read_sequence(b'}', opened).map(Edn::Vector)
                    }
                    Some(b'_') => {
                        self.bump();
                        self.read()?;
                        self.read()
                    }
                    _ => {
                        // A tagged literal (`#inst "..."`, `#jepsen.history.Op{...}`): keep the datum.
                        self.read_token();
                        self.read()
                    }
                }
            }
            b'"' => self.read_string(),
            b'}' | b']' | b')' => Err(self.error(format!("unexpected `{}`", byte as char))),
            _ => {
                let start_column = self.column();
                let start_line = self.line;
                let token = self.read_token();
                if token.is_empty() {
                    return Err(self.error(format!("unexpected character `{}`", byte as char)));
                }
                token_to_edn(token).map_err(|message| ParseError::new(start_line, start_column, message))
            }
        }
    }

    /// Reads items up to `close`; `opened` is where the opening bracket was (for error messages).
    fn read_sequence(&mut self, close: u8, opened: (usize, usize)) -> Result<Vec<Edn>, ParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            match self.peek() {
                Some(byte) if byte == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(byte @ (b'}' | b']' | b')')) => {
                    return Err(self.error(format!(
                        "expected `{}` to close the sequence opened at {}:{}, found `{}`",
                        close as char, opened.0, opened.1, byte as char
                    )))
                }
                None => {
                    return Err(self.error(format!(
                        "unexpected end of input, expected `{}` to close the sequence opened at {}:{}",
                        close as char, opened.0, opened.1
                    )))
                }
                _ => items.push(self.read()?),
            }
        }
    }

    fn read_token(&mut self) -> &'a str {
        let start = self.position;
        while let Some(byte) = self.peek() {
            if matches!(
                byte,
                b' ' | b'\t' | b'\r' | b'\n' | b',' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'"' | b';'
            ) {
                break;
            }
            self.bump();
        }
        &self.text[start..self.position]
    }

    fn read_string(&mut self) -> Result<Edn, ParseError> {
        self.bump();
        let mut out = String::new();
        loop {
            let Some(byte) = self.peek() else {
                return Err(self.error("unterminated string"));
            };
            match byte {
                b'"' => {
                    self.bump();
                    return Ok(Edn::Str(out));
                }
                b'\\' => {
                    self.bump();
                    let escaped = self.peek().ok_or_else(|| self.error("unterminated string escape"))?;
                    out.push(match escaped {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'u' => {
                            let hex = self.text.get(self.position + 1..self.position + 5).unwrap_or("");
                            let digits = hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
                            let code = u32::from_str_radix(hex, 16).ok().filter(|_| digits);
                            let Some(character) = code.and_then(char::from_u32) else {
                                return Err(self.error("a \\u escape needs four hex digits of a character"));
                            };
                            for _ in 0..4 {
                                self.bump();
                            }
                            character
                        }
                        other if other.is_ascii() => {
                            return Err(self.error(format!("unknown string escape `\\{}`", other as char)))
                        }
                        _ => return Err(self.error("unknown string escape")),
                    });
                    self.bump();
                }
                _ => {
                    let rest = &self.text[self.position..];
                    let character = rest.chars().next().expect("peek saw a byte, so a char starts here");
                    out.push(character);
                    for _ in 0..character.len_utf8() {
                        self.bump();
                    }
                }
            }
        }
    }
}

fn token_to_edn(token: &str) -> Result<Edn, String> {
    match token {
        "nil" => return Ok(Edn::Nil),
        "true" => return Ok(Edn::Bool(true)),
        "false" => return Ok(Edn::Bool(false)),
        _ => {}
    }
    if let Some(name) = token.strip_prefix(':') {
        if name.is_empty() {
            return Err("empty keyword".into());
        }
        return Ok(Edn::Keyword(name.to_string()));
    }
    let first = token.as_bytes()[0];
    let numeric = first.is_ascii_digit()
        || ((first == b'-' || first == b'+') && token.len() > 1 && token.as_bytes()[1].is_ascii_digit());
    if numeric {
        let trimmed = token.trim_end_matches('N');
        if let Ok(int) = trimmed.parse::<i64>() {
            return Ok(Edn::Int(int));
        }
        if trimmed.trim_end_matches('M').parse::<f64>().is_ok() {
            return Ok(Edn::Float(token.to_string()));
        }
        return Err(format!("malformed number `{token}`"));
    }
    Ok(Edn::Symbol(token.to_string()))
}

/// Turns one EDN op map into a history event.
fn op_map_to_event(map: Vec<(Edn, Edn)>, index: usize) -> Result<Option<HistoryEvent>, String> {
    let mut process = None;
    let mut kind = None;
    let mut f = None;
    let mut key = None;
    let mut value = Value::Nil;
    let mut time_ns = None;
    let mut error = None;
    let mut nemesis = false;
    for (map_key, map_value) in map {
        let Edn::Keyword(name) = map_key else { continue };
        match name.as_str() {
            "process" => match map_value {
                Edn::Int(p) if p >= 0 => process = Some(p as ProcessId),
                Edn::Keyword(_) | Edn::Symbol(_) => nemesis = true,
                other => return Err(format!(":process must be a non-negative integer, found {}", other.describe())),
            },
            "type" => {
                kind = Some(match map_value {
                    Edn::Keyword(t) => event_type(&t).ok_or_else(|| format!("unknown :type :{t}"))?,
                    other => return Err(format!(":type must be a keyword, found {}", other.describe())),
                })
            }
            "f" => {
                f = Some(match map_value {
                    Edn::Keyword(name) | Edn::Symbol(name) | Edn::Str(name) => name,
                    other => return Err(format!(":f must be a keyword, found {}", other.describe())),
                })
            }
            "key" => key = Some(map_value.into_value()),
            "value" => value = map_value.into_value(),
            "time" => {
                if let Edn::Int(t) = map_value {
                    time_ns = Some(t.max(0) as u64);
                }
            }
            "error" => error = Some(map_value.into_value().to_string().trim_matches('"').to_string()),
            _ => {}
        }
    }
    if nemesis {
        return Ok(None);
    }
    let process = process.ok_or("op map has no :process")?;
    let kind = kind.ok_or("op map has no :type")?;
    let f = f.ok_or("op map has no :f")?;
    Ok(Some(HistoryEvent {
        index: index as u64,
        time_ns: time_ns.unwrap_or(index as u64),
        process,
        kind,
        f,
        key,
        value,
        error,
        node: None,
    }))
}

fn event_type(name: &str) -> Option<EventType> {
    match name {
        "invoke" => Some(EventType::Invoke),
        "ok" => Some(EventType::Ok),
        "fail" => Some(EventType::Fail),
        "info" => Some(EventType::Info),
        _ => None,
    }
}

fn push_event(parsed: &mut ParsedHistory, mut event: HistoryEvent, line: usize) {
    event.index = parsed.history.events.len() as u64;
    if event.time_ns < parsed.history.events.last().map_or(0, |e| e.time_ns) {
        // Foreign times may be missing or coarse; real-time order is the order of the records.
        event.time_ns = parsed.history.events.last().map_or(0, |e| e.time_ns);
    }
    parsed.history.events.push(event);
    parsed.event_lines.push(line);
}

fn parse_edn(text: &str) -> Result<ParsedHistory, ParseError> {
    let mut parsed = ParsedHistory::default();
    let mut reader = EdnReader::new(text, 1);
    let add = |parsed: &mut ParsedHistory, datum: Edn, line: usize, column: usize, inside: bool| {
        let Edn::Map(pairs) = datum else {
            let message = if inside { "expected an op map inside the history vector" } else { "expected an op map" };
            return Err(ParseError::new(line, column, format!("{message}, found {}", datum.describe())));
        };
        let index = parsed.history.events.len();
        match op_map_to_event(pairs, index) {
            Ok(Some(event)) => push_event(parsed, event, line),
            Ok(None) => {}
            Err(message) => return Err(ParseError::new(line, column, message)),
        }
        Ok(())
    };
    while !reader.at_end() {
        let (line, column) = (reader.line, reader.column());
        if reader.peek() == Some(b'[') {
            // A whole history vector (history.edn): read its op maps one by one, keeping positions.
            reader.bump();
            loop {
                reader.skip_blank();
                match reader.peek() {
                    Some(b']') => {
                        reader.bump();
                        break;
                    }
                    None => {
                        return Err(reader.error(format!(
                        "unexpected end of input, expected `]` to close the history vector opened at {line}:{column}"
                    )))
                    }
                    _ => {}
                }
                let (item_line, item_column) = (reader.line, reader.column());
                let datum = reader.read()?;
                add(&mut parsed, datum, item_line, item_column, true)?;
            }
        } else {
            let datum = reader.read()?;
            add(&mut parsed, datum, line, column, false)?;
        }
    }
    Ok(parsed)
}

/// Jepsen console log: `INFO  jepsen.util - 3 :invoke :cas [1 4]` (tabs or spaces); other lines are skipped.
fn parse_jepsen_log(text: &str) -> Result<ParsedHistory, ParseError> {
    let mut parsed = ParsedHistory::default();
    for (line_index, line) in text.lines().enumerate() {
        let line_number = line_index + 1;
        let Some(marker) = line.find("jepsen.util") else { continue };
        let after_marker = &line[marker + "jepsen.util".len()..];
        let Some(dash) = after_marker.find(" - ") else { continue };
        let body_start = marker + "jepsen.util".len() + dash + 3;
        let body = &line[body_start..];
        let column_of = |offset: usize| line[..body_start + offset].chars().count() + 1;
        let mut fields = Vec::new();
        let mut cursor = 0;
        for _ in 0..3 {
            let rest = &body[cursor..];
            let skipped = rest.len() - rest.trim_start().len();
            let start = cursor + skipped;
            let length = body[start..].find([' ', '\t']).unwrap_or(body.len() - start);
            fields.push((start, &body[start..start + length]));
            cursor = start + length;
        }
        let (process_offset, process_text) = fields[0];
        if process_text.starts_with(':') {
            continue; // :nemesis
        }
        let process: ProcessId = process_text.parse().map_err(|_| {
            ParseError::new(
                line_number,
                column_of(process_offset),
                format!("expected a process number, found {process_text:?}"),
            )
        })?;
        let (type_offset, type_text) = fields[1];
        let kind = type_text.strip_prefix(':').and_then(event_type).ok_or_else(|| {
            ParseError::new(
                line_number,
                column_of(type_offset),
                format!("expected :invoke, :ok, :fail or :info, found {type_text:?}"),
            )
        })?;
        let (f_offset, f_text) = fields[2];
        let Some(f) = f_text.strip_prefix(':').filter(|name| !name.is_empty()) else {
            return Err(ParseError::new(
                line_number,
                column_of(f_offset),
                format!("expected an operation keyword such as :read, found {f_text:?}"),
            ));
        };
        let value_offset = cursor;
        let value_text = body[value_offset..].trim();
        let value = if value_text.is_empty() {
            Value::Nil
        } else {
            let mut reader = EdnReader::new(value_text, line_number);
            let leading = body[value_offset..].len() - body[value_offset..].trim_start().len();
            let base_column = column_of(value_offset + leading) - 1;
            let shift = |e: ParseError| ParseError::new(e.line, e.column + base_column, e.message);
            let datum = reader.read().map_err(shift)?;
            if !reader.at_end() {
                return Err(shift(reader.error("unexpected text after the value")));
            }
            datum.into_value()
        };
        let error = match (&kind, &value) {
            (EventType::Fail | EventType::Info, Value::Str(reason)) => Some(reason.clone()),
            _ => None,
        };
        let index = parsed.history.events.len();
        let event = HistoryEvent {
            index: index as u64,
            time_ns: index as u64,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
            error,
            node: None,
        };
        push_event(&mut parsed, event, line_number);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edn_op_maps_one_a_line() {
        let text = "{:process 0, :type :invoke, :f :append, :key \"0\", :value \"x 0 0 y\"}\n\
                    {:process 0, :type :ok, :f :get, :key \"7\", :value \"\"}\n";
        assert_eq!(detect_format(text), Some(Format::Edn));
        let history = parse_history(text, None).expect("valid EDN");
        assert_eq!(history.len(), 2);
        assert_eq!(history.events[0].f, "append");
        assert_eq!(history.events[0].key, Some(Value::from("0")));
        assert_eq!(history.events[1].kind, EventType::Ok);
        assert_eq!(history.events[1].value, Value::from(""));
    }

    #[test]
    fn edn_history_vector_skips_nemesis() {
        let text = "[{:type :invoke, :f :write, :value 3, :process 0, :time 10}\n\
                    {:type :info, :f :start, :process :nemesis}\n\
                    {:type :ok, :f :write, :value 3, :process 0, :time 20}]";
        let history = parse_history(text, None).expect("valid EDN vector");
        assert_eq!(history.len(), 2);
        assert_eq!(history.events[1].time_ns, 20);
    }

    #[test]
    fn jepsen_log_lines() {
        let text = "2017-01-01 INFO  jepsen.util - 3\t:invoke\t:cas\t[1 4]\n\
                    some other line\n\
                    INFO  jepsen.util - 3\t:fail\t:cas\t[1 4]\n\
                    INFO jepsen.util - 0 :ok :read nil\n\
                    INFO  jepsen.util - 4\t:info\t:write\t:timed-out\n\
                    INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n";
        assert_eq!(detect_format(text), Some(Format::JepsenLog));
        let history = parse_history(text, None).expect("valid log");
        assert_eq!(history.len(), 4);
        assert_eq!(history.events[0].value, Value::from(vec![1, 4]));
        assert_eq!(history.events[2].value, Value::Nil);
        assert_eq!(history.events[3].kind, EventType::Info);
        assert_eq!(history.events[3].error.as_deref(), Some("timed-out"));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let check = |text: &str, format: Option<Format>, line: usize, column: usize| {
            let error = parse_history(text, format).expect_err("malformed");
            assert_eq!((error.line, error.column), (line, column), "{error}");
        };
        check("{:process 0, :type :invoke, :f :read}\n{:process 1, :type :bogus, :f :read}\n", None, 2, 1);
        // The `}` at column 50 cannot close the `[` opened at column 46.
        check("{:process 0, :type :invoke, :f :read, :value [1 2}\n", None, 1, 50);
        check("INFO  jepsen.util - x\t:invoke\t:read\tnil\n", None, 1, 21);
        check("INFO  jepsen.util - 1\t:invoke\t:read\t[1 2\n", None, 1, 41);
        check("{\"index\":0}\n", Some(Format::Jsonl), 1, 11);
        check("hello\n", None, 1, 1);
        // An item of a whole history vector is reported where it starts.
        check("[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :ok}]\n", None, 2, 2);
        check("[{:process 0, :type :invoke, :f :read}\n 7]\n", None, 2, 2);
        check("[{:process 0, :type :invoke, :f :read}\n", None, 2, 1);
        check("{:process 0, :type :invoke, :f :read, :value \"a\\u00\"}", None, 1, 49);
        let deep = format!("{{:process 0, :type :invoke, :f :read, :value {}}}", "[".repeat(100_000));
        let error = parse_history(&deep, None).expect_err("too deep");
        assert!(error.message.contains("nested more than"), "{error}");
    }

    #[test]
    fn edn_strings_and_space_separated_logs() {
        let history =
            parse_history("{:process 0, :type :invoke, :f :write, :value \"\\u00e9\\n\"}", None).expect("valid");
        assert_eq!(history.events[0].value, Value::from("é\n"));
        let log = "INFO  jepsen.util - 3 :invoke :cas [1 4]\nINFO  jepsen.util - 3 :ok :cas [1 4]\n";
        let history = parse_history(log, Some(Format::JepsenLog)).expect("valid");
        assert_eq!((history.len(), history.events[1].kind), (2, EventType::Ok));
        assert_eq!(history.events[1].value, Value::from(vec![1, 4]));
    }
}
