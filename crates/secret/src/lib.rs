//! [`Secret`]: a credential (runner, job, pool, admin or bearer token; a cache key) that cannot
//! leak through `Debug`, `Display` or `tracing`.
//!
//! Credentials travel through many structs (configuration files, job payloads, client calls,
//! errors), and those are logged with `{:?}`. Deriving `Debug` on any of them must stay safe, so
//! the credential type itself prints `[MASKED]`; the value is only reachable through the explicit
//! [`Secret::expose`]. One type for the whole workspace, so a configured token reaches the wire
//! without conversions.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `Debug` and `Display` print instead of a value (the word GitLab uses in job logs).
pub const MASK: &str = "[MASKED]";

/// A credential whose value is only available through [`Secret::expose`].
///
/// Serialisation writes the real value: it is how a token reaches the wire (request bodies,
/// a runner's settings handed to workers) and the durable job store. Formatting never does.
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

    /// True for an empty credential (a payload without a token, a key left unset).
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
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// A string, or nothing at all; a visitor rather than `Option<String>` because formats such as
/// TOML only offer options where a field may be missing, not inside a value.
struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_none<E: de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Ok(Secret::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Secret, D::Error> {
        deserializer.deserialize_any(self)
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
        let null: Secret = serde_json::from_str("null").unwrap();
        assert!(null.is_empty());
    }

    #[test]
    fn toml_fields_and_optional_fields_parse() {
        #[derive(serde::Deserialize)]
        struct File {
            token: Secret,
            maybe: Option<Secret>,
        }
        let file: File = toml::from_str("token = \"t1\"\nmaybe = \"t2\"").unwrap();
        assert_eq!((file.token.expose(), file.maybe.unwrap().expose()), ("t1", "t2"));
        assert!(toml::from_str::<File>("token = 3").is_err());
    }
}
