//! Durations and sizes as people write them (`"150ms"`, `"2s"`, `"-500ms"`, `"1MiB"`), with serde
//! (strings both ways) and JSON Schema (a string with a pattern, so editors can check them).

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// Nanoseconds per unit suffix, longest suffixes first so `ms` is not read as `m` + `s`.
const DURATION_UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const DURATION_PATTERN: &str = r"^-?[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)$";
const SIZE_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|KiB|MiB|GiB)?$";

/// Splits `"1.5ms"` into the number text and the unit suffix.
fn split_number(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    (&text[..end], &text[end..])
}

/// Parses a decimal like `1.25` times `scale` exactly (no float rounding for whole numbers).
fn scaled(number: &str, scale: u128) -> Option<u128> {
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = whole.parse().ok()?;
    let mut total = whole.checked_mul(scale)?;
    if !fraction.is_empty() {
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(fraction.len() as u32);
        total = total.checked_add(digits.checked_mul(scale)? / denominator)?;
    }
    Some(total)
}

/// Parses a signed duration such as `"150ms"`, `"2s"`, `"1.5m"`, `"-500ms"` into nanoseconds.
pub fn parse_signed_duration_ns(text: &str) -> Result<i64, String> {
    let expected = "a duration such as \"150ms\", \"2s\", \"1.5m\" (units: ns, us, ms, s, m, h)";
    let trimmed = text.trim();
    let (negative, body) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let (number, unit) = split_number(body);
    let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(suffix, _)| *suffix == unit) else {
        return Err(format!("invalid duration {text:?}: expected {expected}"));
    };
    let nanos = scaled(number, scale).ok_or_else(|| format!("invalid duration {text:?}: expected {expected}"))?;
    let nanos = i64::try_from(nanos).map_err(|_| format!("duration {text:?} is too long"))?;
    Ok(if negative { -nanos } else { nanos })
}

/// Parses a non-negative duration into nanoseconds.
pub fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let nanos = parse_signed_duration_ns(text)?;
    u64::try_from(nanos).map_err(|_| format!("invalid duration {text:?}: expected a duration that is not negative"))
}

/// Parses a size such as `"1MiB"`, `"64KB"`, `"512"` (bytes) into bytes.
pub fn parse_size_bytes(text: &str) -> Result<u64, String> {
    let expected = "a size such as \"512B\", \"64KiB\", \"1MiB\", \"10MB\"";
    let (number, unit) = split_number(text.trim());
    let scale: u128 = match unit {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("invalid size {text:?}: expected {expected}")),
    };
    let bytes = scaled(number, scale).ok_or_else(|| format!("invalid size {text:?}: expected {expected}"))?;
    u64::try_from(bytes).map_err(|_| format!("size {text:?} is too large"))
}

/// Formats nanoseconds in the largest unit that keeps the value whole (`"1500ms"`, `"2s"`), so that
/// what is written reads back to the same value.
pub fn format_duration_ns(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs() as u128;
    if magnitude == 0 {
        return "0s".to_string();
    }
    for (suffix, scale) in
        [("h", 3_600_000_000_000u128), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)]
    {
        if magnitude.is_multiple_of(scale) {
            return format!("{sign}{}{suffix}", magnitude / scale);
        }
    }
    format!("{sign}{magnitude}ns")
}

/// A non-negative duration written as a string (`"150ms"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Duration {
    pub fn from_ns(nanos: u64) -> Self {
        Duration(nanos)
    }
    pub fn from_millis(millis: u64) -> Self {
        Duration(millis * 1_000_000)
    }
    pub fn from_secs(secs: u64) -> Self {
        Duration(secs * 1_000_000_000)
    }
    pub fn as_ns(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ns(self.0.min(i64::MAX as u64) as i64))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = DurationText::deserialize(deserializer)?;
        parse_duration_ns(&text.0).map(Duration).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)$",
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h), e.g. \"150ms\", \"2s\", \"1.5m\".",
            "examples": ["150ms", "2s"]
        })
    }
}

/// A duration that may be negative (`"-500ms"`), for clock jumps and offsets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedDuration(pub i64);

impl fmt::Display for SignedDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ns(self.0))
    }
}

impl Serialize for SignedDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SignedDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = DurationText::deserialize(deserializer)?;
        parse_signed_duration_ns(&text.0).map(SignedDuration).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for SignedDuration {
    fn schema_name() -> Cow<'static, str> {
        "SignedDuration".into()
    }
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration that may be negative, e.g. \"-500ms\", \"2s\".",
            "examples": ["-500ms", "2s"]
        })
    }
}

/// A size in bytes written as a string (`"1MiB"`); a bare integer means bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{suffix}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = DurationText::deserialize(deserializer)?;
        parse_size_bytes(&text.0).map(ByteSize).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer"],
            "pattern": SIZE_PATTERN,
            "minimum": 0,
            "description": "A size: a number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. \"1MiB\"; an integer means bytes.",
            "examples": ["1MiB", "64KiB"]
        })
    }
}

/// The text of a duration or size: a string, or an integer (bytes for sizes; a clear error for
/// durations, which need a unit).
struct DurationText(String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string with a unit, such as \"150ms\" or \"1MiB\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_every_unit_and_round_trip() {
        let check = |text: &str, nanos: i64| {
            assert_eq!(parse_signed_duration_ns(text), Ok(nanos), "{text}");
            assert_eq!(parse_signed_duration_ns(&format_duration_ns(nanos)), Ok(nanos), "{text} round trip");
        };
        check("150ms", 150_000_000);
        check("2s", 2_000_000_000);
        check("1.5m", 90_000_000_000);
        check("-500ms", -500_000_000);
        check("7ns", 7);
        check("3us", 3_000);
        check("1h", 3_600_000_000_000);
        check("0.001s", 1_000_000);
        assert_eq!(format_duration_ns(1_500_000_000), "1500ms");
    }

    #[test]
    fn bad_durations_say_what_was_expected() {
        for text in ["", "5", "ms", "1.s", "10 parsecs", "1..5s", "9999999999h"] {
            let error = parse_signed_duration_ns(text).expect_err(text);
            assert!(error.contains("duration"), "{text}: {error}");
        }
        assert!(parse_duration_ns("-1s").expect_err("negative").contains("not negative"));
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size_bytes("64KB"), Ok(64_000));
        assert_eq!(parse_size_bytes("512"), Ok(512));
        assert_eq!(parse_size_bytes("1.5KiB"), Ok(1536));
        assert!(parse_size_bytes("1 furlong").is_err());
        assert_eq!(ByteSize(1 << 20).to_string(), "1MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
