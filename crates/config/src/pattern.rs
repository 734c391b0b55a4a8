//! [`OverwritePattern`]: the regular expression of an `*_overwrite_allowed` key
//! (`namespace_overwrite_allowed = "ci-.*"`), compiled when the file is loaded so a bad one is
//! reported at start-up instead of failing every job that tries an overwrite.
//!
//! Matching semantics are the official runner's: Go `regexp.MatchString`, which is
//! **unanchored** — `"ci-.*"` also accepts `"prod-ci-x"`. [`OverwritePattern::is_match`] keeps
//! that; [`OverwritePattern::is_full_match`] is there for a stricter policy. Which one Flotilla
//! applies to job overwrites is the Pod builder's decision.

use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A compiled `*_overwrite_allowed` pattern.
#[derive(Clone)]
pub struct OverwritePattern {
    unanchored: Regex,
    anchored: Regex,
}

impl OverwritePattern {
    /// Compiles `pattern` (RE2 syntax, which Rust's `regex` shares for all practical patterns).
    pub fn new(pattern: &str) -> Result<Self, String> {
        let unanchored = Regex::new(pattern).map_err(|error| format!("invalid regex: {}", first_line(&error)))?;
        let anchored = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|error| format!("invalid regex: {}", first_line(&error)))?;
        Ok(Self { unanchored, anchored })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.unanchored.as_str()
    }

    /// True when the pattern matches anywhere in `value` (the official runner's check).
    pub fn is_match(&self, value: &str) -> bool {
        self.unanchored.is_match(value)
    }

    /// True when the pattern matches all of `value`.
    pub fn is_full_match(&self, value: &str) -> bool {
        self.anchored.is_match(value)
    }
}

/// The regex crate's errors draw the pattern over several lines; one line reads better in a list.
fn first_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last_line = text.lines().rfind(|line| !line.trim().is_empty()).unwrap_or("");
    last_line.trim().trim_start_matches("error: ").to_owned()
}

impl PartialEq for OverwritePattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for OverwritePattern {}

impl fmt::Debug for OverwritePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OverwritePattern({:?})", self.as_str())
    }
}

impl Serialize for OverwritePattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OverwritePattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(deserializer)?;
        Self::new(&pattern).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_unanchored_like_the_official_runner() {
        let pattern = OverwritePattern::new("ci-.*").unwrap();
        assert!(pattern.is_match("ci-main"));
        assert!(pattern.is_match("prod-ci-x"), "Go regexp.MatchString is unanchored");
        assert!(!pattern.is_full_match("prod-ci-x"));
        assert!(pattern.is_full_match("ci-main"));
    }

    #[test]
    fn anchoring_respects_alternation() {
        let pattern = OverwritePattern::new("a|b").unwrap();
        assert!(pattern.is_full_match("b"));
        assert!(!pattern.is_full_match("ab"));
    }

    #[test]
    fn a_bad_pattern_is_reported_on_one_line() {
        let error = OverwritePattern::new("ci-(").unwrap_err();
        assert!(error.starts_with("invalid regex: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains("unclosed group"), "{error}");
    }
}
