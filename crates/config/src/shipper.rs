//! The log-shipper's file: `[log_shipper]` says where it takes trace streams from workers,
//! where it keeps job logs durably, and how it reaches the coordinator.
//!
//! ```toml
//! [log_shipper]
//! coordinator_url = "https://coordinator.example.com:7600"
//! token = "shipper-token"
//! data_dir = "/var/lib/flotilla/log-shipper"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::de::optional;
use crate::path::KeyPath;
use crate::secret::Secret;
use crate::tls::{check_dial_url, ShipperTls};
use crate::validate::{Validate, Validator};

/// A whole log-shipper file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShipperConfigFile {
    #[serde(default = "default_section")]
    pub log_shipper: ShipperSection,
}

/// `[log_shipper]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShipperSection {
    /// Name of this shipper in the coordinator's view (default `log-shipper`).
    #[serde(default = "default_id")]
    pub id: String,
    /// Address of the trace sink workers stream to (default `127.0.0.1:7700`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The sink's URL as workers reach it; unset: `http(s)://<listen>`.
    #[serde(default, deserialize_with = "optional")]
    pub advertise_url: Option<String>,
    /// The coordinator's gRPC address, `http(s)://host:port` (required).
    #[serde(default)]
    pub coordinator_url: String,
    /// Credential for the coordinator (its `[coordinator] shipper_token`); unset: none sent.
    #[serde(default, deserialize_with = "optional")]
    pub token: Option<Secret>,
    /// Directory of the durable per-job logs (default `/var/lib/flotilla/log-shipper`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `[log_shipper.tls]`: serve workers and dial the coordinator over TLS; unset: plain.
    #[serde(default)]
    pub tls: Option<ShipperTls>,
}

impl ShipperSection {
    /// The URL workers are told to stream to.
    pub fn advertised_url(&self) -> String {
        match &self.advertise_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.listen)
            }
        }
    }
}

impl Validate for ShipperConfigFile {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        let section = &self.log_shipper;
        let path = path.key("log_shipper");
        validator.require(&path.key("id"), &section.id);
        check_dial_url(
            &section.coordinator_url,
            section.tls.is_some(),
            &path.key("coordinator_url"),
            validator,
        );
        if let Some(url) = &section.advertise_url {
            check_dial_url(url, section.tls.is_some(), &path.key("advertise_url"), validator);
        }
        if section.data_dir.as_os_str().is_empty() {
            validator.error(&path.key("data_dir"), "is required");
        }
        if let Some(tls) = &section.tls {
            tls.validate(&path.key("tls"), validator);
        }
    }
}

fn default_section() -> ShipperSection {
    ShipperSection::deserialize(toml::Value::Table(toml::Table::new())).expect("an empty table has every default")
}

fn default_id() -> String {
    "log-shipper".to_owned()
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7700))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/flotilla/log-shipper")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let section = default_section();
        assert_eq!(section.listen.to_string(), "127.0.0.1:7700");
        assert_eq!(section.data_dir, PathBuf::from("/var/lib/flotilla/log-shipper"));
        assert_eq!(section.advertised_url(), "http://127.0.0.1:7700");
        assert_eq!(section.token, None);
    }

    #[test]
    fn tls_changes_the_advertised_scheme_and_needs_https_to_the_coordinator() {
        let file: ShipperConfigFile = toml::from_str(
            "[log_shipper]\ncoordinator_url = \"http://c:7600\"\n[log_shipper.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"",
        )
        .unwrap();
        assert_eq!(file.log_shipper.advertised_url(), "https://127.0.0.1:7700");
        let mut validator = Validator::default();
        file.validate(&KeyPath::root(), &mut validator);
        let errors: Vec<String> = validator.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            ["log_shipper.coordinator_url: \"http://c:7600\" is plain http while a tls section is configured; use https://"]
        );
    }
}
