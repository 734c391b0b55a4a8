//! [`Secret`]: a runner or job token that cannot leak through `Debug`, `Display` or `tracing`.
//!
//! Tokens travel through many structs (job payloads, client calls, errors). Deriving `Debug` on
//! any of them must stay safe, so the token type itself prints `[MASKED]`; the real value is
//! only reachable through the explicit [`Secret::expose`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and `Display` print instead of the value (the same word GitLab uses in job logs).
pub const MASK: &str = "[MASKED]";

/// A token whose value is only available through [`Secret::expose`].
///
/// Serialisation writes the real value: it is how the token reaches the wire (request bodies)
/// and the durable job store, both of which need it. Formatting never does.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The token itself. Call this only where the value goes onto the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for an empty token (GitLab never issues one; a payload without a token has it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Accepts a string or `null` (as empty), so a payload with `"token": null` still parses.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(Option::<String>::deserialize(deserializer)?.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_value() {
        let s = Secret::new("glrt-very-secret");
        assert_eq!(format!("{s:?}"), "[MASKED]");
        assert_eq!(format!("{s}"), "[MASKED]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([MASKED])");
        assert_eq!(s.expose(), "glrt-very-secret");
    }

    #[test]
    fn serde_is_transparent() {
        let s: Secret = serde_json::from_str("\"tok\"").unwrap();
        assert_eq!(s.expose(), "tok");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"tok\"");
        let n: Secret = serde_json::from_str("null").unwrap();
        assert!(n.is_empty());
    }
}
