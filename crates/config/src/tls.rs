//! TLS settings of Flotilla's own connections (coordinator ⇄ worker ⇄ log-shipper):
//! [`ServerTls`] for a listener, [`ClientTls`] for a dialer, [`ShipperTls`] for the log-shipper,
//! which is both. Paths are checked for presence here; reading the PEM files is the services' job.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::de::optional;
use crate::path::KeyPath;
use crate::validate::{Validate, Validator};

/// A listener's certificate, and the CA its clients must present certificates from (mTLS).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTls {
    /// PEM certificate chain the server presents (required).
    #[serde(default, deserialize_with = "optional")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (required).
    #[serde(default, deserialize_with = "optional")]
    pub key_file: Option<PathBuf>,
    /// CA bundle client certificates must chain to; unset: no client certificate is asked for.
    #[serde(default, deserialize_with = "optional")]
    pub client_ca_file: Option<PathBuf>,
}

/// A dialer's trust roots and, for mTLS, its own certificate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTls {
    /// CA bundle the server's certificate must chain to; unset: the system roots.
    #[serde(default, deserialize_with = "optional")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mTLS (needs `key_file`).
    #[serde(default, deserialize_with = "optional")]
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    #[serde(default, deserialize_with = "optional")]
    pub key_file: Option<PathBuf>,
}

/// The log-shipper's TLS: it serves workers and dials the coordinator with the same identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShipperTls {
    /// Certificate presented to workers and, as a client certificate, to the coordinator (required).
    #[serde(default, deserialize_with = "optional")]
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file` (required).
    #[serde(default, deserialize_with = "optional")]
    pub key_file: Option<PathBuf>,
    /// CA bundle workers' client certificates must chain to; unset: none asked for.
    #[serde(default, deserialize_with = "optional")]
    pub client_ca_file: Option<PathBuf>,
    /// CA bundle the coordinator's certificate must chain to; unset: the system roots.
    #[serde(default, deserialize_with = "optional")]
    pub ca_file: Option<PathBuf>,
}

fn require_path(path: &KeyPath, value: &Option<PathBuf>, validator: &mut Validator) {
    if value.is_none() {
        validator.error(path, "is required");
    }
}

fn check_pair(cert: &Option<PathBuf>, key: &Option<PathBuf>, path: &KeyPath, validator: &mut Validator) {
    match (cert, key) {
        (Some(_), None) => validator.error(&path.key("key_file"), "is required when cert_file is set"),
        (None, Some(_)) => validator.error(&path.key("cert_file"), "is required when key_file is set"),
        _ => {}
    }
}

impl Validate for ServerTls {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        require_path(&path.key("cert_file"), &self.cert_file, validator);
        require_path(&path.key("key_file"), &self.key_file, validator);
    }
}

impl Validate for ClientTls {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        check_pair(&self.cert_file, &self.key_file, path, validator);
    }
}

impl Validate for ShipperTls {
    fn validate(&self, path: &KeyPath, validator: &mut Validator) {
        require_path(&path.key("cert_file"), &self.cert_file, validator);
        require_path(&path.key("key_file"), &self.key_file, validator);
    }
}

/// A URL Flotilla dials (`coordinator_url`, `log_shipper_url`): `http://` or `https://`, and
/// `https://` whenever a TLS section is configured for it.
pub(crate) fn check_dial_url(url: &str, tls_configured: bool, path: &KeyPath, validator: &mut Validator) {
    if !validator.require(path, url) {
        return;
    }
    validator.check_http_url(path, url);
    if tls_configured && url.starts_with("http://") {
        validator.error(
            path,
            format!("{url:?} is plain http while a tls section is configured; use https://"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(check: impl FnOnce(&mut Validator)) -> Vec<String> {
        let mut validator = Validator::default();
        check(&mut validator);
        validator.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_server_needs_its_certificate_and_key() {
        let tls: ServerTls = toml::from_str("client_ca_file = \"/ca.pem\"").unwrap();
        assert_eq!(
            errors(|v| tls.validate(&KeyPath::root().key("tls"), v)),
            ["tls.cert_file: is required", "tls.key_file: is required"]
        );
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let tls: ClientTls = toml::from_str("cert_file = \"/c.pem\"").unwrap();
        assert_eq!(
            errors(|v| tls.validate(&KeyPath::root().key("tls"), v)),
            ["tls.key_file: is required when cert_file is set"]
        );
        let tls: ClientTls = toml::from_str("ca_file = \"/ca.pem\"").unwrap();
        assert!(errors(|v| tls.validate(&KeyPath::root(), v)).is_empty());
    }

    #[test]
    fn tls_needs_https() {
        let path = KeyPath::root().key("coordinator_url");
        assert_eq!(
            errors(|v| check_dial_url("http://c:7600", true, &path, v)),
            ["coordinator_url: \"http://c:7600\" is plain http while a tls section is configured; use https://"]
        );
        assert!(errors(|v| check_dial_url("http://c:7600", false, &path, v)).is_empty());
        assert_eq!(
            errors(|v| check_dial_url("", false, &path, v)),
            ["coordinator_url: is required"]
        );
    }
}
