//! Durations as configuration files write them.
//!
//! The official runner's duration keys (`cleanup_resources_timeout`, `unhealthy_interval`, …)
//! are Go `time.Duration`s, parsed with Go's `time.ParseDuration`: `"300s"`, `"1h30m"`,
//! `"1.5h"`, `"500ms"`. Its documentation also shows `"1 h 30 min"`, which Go rejects; we
//! accept that too (humantime syntax) so such files load. Flotilla's own duration keys use the
//! same parser.
//!
//! A bare integer is refused: the Go TOML decoder reads it as *nanoseconds*, so
//! `cleanup_resources_timeout = 300` means 300 ns there — never what was meant.

use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Parses `"1h30m"`, `"1.5h"`, `"250ms"`, `"0"` (Go syntax), else `"1 h 30 min"` (humantime).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!("{text:?} is negative"));
    }
    if let Some(duration) = parse_go_duration(trimmed) {
        return Ok(duration);
    }
    humantime::parse_duration(trimmed)
        .map_err(|_| format!("{text:?} is not a duration (write e.g. \"90s\", \"5m\" or \"1h30m\")"))
}

/// Go's `time.ParseDuration` for non-negative values; `None` when the text is not in its syntax.
fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_nanos += value * nanos_per_unit;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total_nanos.round() as u64))
}

/// Writes a duration so [`parse_duration`] reads it back (`"5m"`, `"1h 30m"`).
pub fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a duration such as \"90s\" or \"1h30m\"")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Duration, E> {
        parse_duration(value).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "{value} has no unit; write e.g. \"{value}s\" (GitLab Runner reads a bare number as nanoseconds)"
        )))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
        self.visit_i64(value as i64)
    }
}

/// `deserialize_with` for a required [`Duration`] key.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

/// `serialize_with` for a [`Duration`] key.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_duration(*duration))
}

/// `deserialize_with`/`serialize_with` for an optional [`Duration`] key; `""` counts as unset.
pub mod option {
    use super::*;

    struct OptionalDurationVisitor;

    impl<'de> Visitor<'de> for OptionalDurationVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"90s\" or \"1h30m\"")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_any(self)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            if value.is_empty() {
                return Ok(None);
            }
            DurationVisitor.visit_str(value).map(Some)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            DurationVisitor.visit_i64(value).map(Some)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            DurationVisitor.visit_u64(value).map(Some)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptionalDurationVisitor)
    }

    pub fn serialize<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_syntax() {
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2h45m30.5s").unwrap(), Duration::from_millis(9_930_500));
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn reads_the_documented_spaced_form() {
        // docs/configuration/advanced-configuration.md writes `1 h 30 min` for unhealthy_interval.
        assert_eq!(parse_duration("1h 30min").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("3600 s").unwrap(), Duration::from_secs(3600));
    }

    #[test]
    fn refuses_nonsense_and_negatives() {
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("\"soon\" is not a duration"));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn a_bare_integer_is_refused_with_the_reason() {
        #[derive(serde::Deserialize, Debug)]
        struct Holder {
            #[serde(deserialize_with = "super::deserialize")]
            #[allow(dead_code)]
            timeout: Duration,
        }
        let error = toml::from_str::<Holder>("timeout = 300").unwrap_err().to_string();
        assert!(error.contains("write e.g. \"300s\""), "{error}");
    }

    #[test]
    fn formatting_round_trips() {
        for duration in [
            Duration::from_secs(300),
            Duration::from_millis(1500),
            Duration::from_secs(5400),
        ] {
            assert_eq!(parse_duration(&format_duration(duration)).unwrap(), duration);
        }
    }
}
