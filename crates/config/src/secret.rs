//! [`Secret`]: a credential read from a configuration file (runner tokens, bearer tokens, pool
//! tokens, cache keys). Configurations are logged with `{:?}` at start-up, so `Debug` and
//! `Display` never show the value; only [`Secret::expose`] does.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and `Display` print instead of a value (the word GitLab uses in job logs).
pub const MASK: &str = "[MASKED]";

/// A credential whose value is only reachable through [`Secret::expose`].
///
/// Serialisation writes the real value: the coordinator hands a runner's settings to workers
/// as JSON, and they need the bearer token. Formatting never writes it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Call this only where the value goes onto the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An empty secret is shown as such: "token is missing" is worth seeing in a dump.
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str(MASK)
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
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
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_masks_the_value() {
        let secret = Secret::new("glrt-very-secret");
        assert_eq!(format!("{secret:?}"), "[MASKED]");
        assert_eq!(format!("{secret}"), "[MASKED]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([MASKED])");
        assert_eq!(secret.expose(), "glrt-very-secret");
    }

    #[test]
    fn an_empty_secret_shows_as_empty() {
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    }

    #[test]
    fn serde_carries_the_value() {
        let secret: Secret = serde_json::from_str("\"tok\"").unwrap();
        assert_eq!(secret.expose(), "tok");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"tok\"");
    }
}
