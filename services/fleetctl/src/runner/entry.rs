//! The `[[runners]]` entry `fleetctl runner register` prints: a runner's identity in the form the
//! coordinator's `config.toml` takes it, written the way `gitlab-runner register` writes its own
//! (TOML datetimes; `0001-01-01T00:00:00Z`, Go's zero time, for a token that does not expire), or
//! as JSON for scripts.
//!
//! This is the only output of `fleetctl runner` that holds a token: it is meant to be pasted into
//! a file that holds it anyway.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use flotilla_gitlab::Secret;
use serde_json::json;

/// What the official runner writes for a token without an expiry date.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// One `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerEntry {
    /// Local name of the entry (GitLab never sees it for created runners).
    pub name: String,
    /// GitLab's URL as the operator gave it.
    pub url: String,
    /// GitLab's runner id; unknown when an old GitLab verified a legacy token without saying.
    pub id: Option<u64>,
    /// The runner authentication token.
    pub token: Secret,
    /// When the token was obtained (registered or verified), to the second.
    pub token_obtained_at: DateTime<Utc>,
    /// When GitLab says the token expires; `None`: never.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// `[runners.kubernetes] service_account`, when given.
    pub service_account: Option<String>,
}

impl RunnerEntry {
    /// The entry as TOML, indented like the official runner's `config.toml`.
    pub fn toml(&self) -> String {
        let mut out = String::from("[[runners]]\n");
        // Writing into a String cannot fail.
        let _ = writeln!(out, "  name = {}", toml_string(&self.name));
        let _ = writeln!(out, "  url = {}", toml_string(&self.url));
        if let Some(id) = self.id {
            let _ = writeln!(out, "  id = {id}");
        }
        let _ = writeln!(out, "  token = {}", toml_string(self.token.expose()));
        let _ = writeln!(out, "  token_obtained_at = {}", datetime(&self.token_obtained_at));
        let expires = self.token_expires_at.as_ref().map(datetime);
        let _ = writeln!(out, "  token_expires_at = {}", expires.as_deref().unwrap_or(NEVER));
        out.push_str("  executor = \"kubernetes\"\n");
        if let Some(account) = &self.service_account {
            out.push_str("  [runners.kubernetes]\n");
            let _ = writeln!(out, "    service_account = {}", toml_string(account));
        }
        out
    }

    /// The entry as a JSON object (`token_expires_at` is `null` when the token does not expire).
    pub fn json(&self) -> String {
        let value = json!({
            "name": self.name,
            "url": self.url,
            "id": self.id,
            "token": self.token.expose(),
            "token_obtained_at": datetime(&self.token_obtained_at),
            "token_expires_at": self.token_expires_at.as_ref().map(datetime),
            "executor": "kubernetes",
            "kubernetes": self.service_account.as_ref().map(|account| json!({"service_account": account})),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }
}

/// A TOML string literal, escaped by the toml crate.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// An RFC 3339 UTC datetime to the second, valid as a bare TOML datetime.
fn datetime(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> RunnerEntry {
        RunnerEntry {
            name: "k8s \"default\"".into(),
            url: "https://gitlab.example.com".into(),
            id: Some(42),
            token: Secret::new("glrt-secret"),
            token_obtained_at: DateTime::parse_from_rfc3339("2026-08-22T10:11:12Z")
                .unwrap()
                .with_timezone(&Utc),
            token_expires_at: None,
            service_account: None,
        }
    }

    #[test]
    fn toml_entry_parses_back() {
        let text = entry().toml();
        assert!(text.starts_with("[[runners]]\n  name = "), "{text}");
        assert!(text.contains("  token_obtained_at = 2026-08-22T10:11:12Z\n"), "{text}");
        assert!(text.contains("  token_expires_at = 0001-01-01T00:00:00Z\n"), "{text}");
        let parsed: toml::Table = text.parse().unwrap();
        let runner = &parsed["runners"].as_array().unwrap()[0];
        assert_eq!(runner["name"].as_str(), Some("k8s \"default\""));
        assert_eq!(runner["url"].as_str(), Some("https://gitlab.example.com"));
        assert_eq!(runner["id"].as_integer(), Some(42));
        assert_eq!(runner["token"].as_str(), Some("glrt-secret"));
        assert!(runner["token_obtained_at"].as_datetime().is_some());
        assert_eq!(runner["executor"].as_str(), Some("kubernetes"));
    }

    #[test]
    fn unknown_id_is_left_out_and_expiry_is_written() {
        let mut e = entry();
        e.id = None;
        e.token_expires_at = Some(
            DateTime::parse_from_rfc3339("2027-01-01T00:00:00+02:00")
                .unwrap()
                .with_timezone(&Utc),
        );
        let text = e.toml();
        assert!(!text.contains("id ="), "{text}");
        assert!(text.contains("  token_expires_at = 2026-12-31T22:00:00Z\n"), "{text}");
    }

    #[test]
    fn a_service_account_goes_into_the_kubernetes_table() {
        let mut e = entry();
        e.service_account = Some("ci-builder".into());
        let text = e.toml();
        let parsed: toml::Table = text.parse().unwrap();
        let runner = &parsed["runners"].as_array().unwrap()[0];
        assert_eq!(
            runner["kubernetes"]["service_account"].as_str(),
            Some("ci-builder"),
            "{text}"
        );
        let value: serde_json::Value = serde_json::from_str(&e.json()).unwrap();
        assert_eq!(value["kubernetes"]["service_account"], "ci-builder");
    }

    #[test]
    fn json_entry() {
        let value: serde_json::Value = serde_json::from_str(&entry().json()).unwrap();
        assert_eq!(value["id"], 42);
        assert_eq!(value["token"], "glrt-secret");
        assert_eq!(value["token_obtained_at"], "2026-08-22T10:11:12Z");
        assert_eq!(value["token_expires_at"], serde_json::Value::Null);
        assert_eq!(value["executor"], "kubernetes");
    }
}
