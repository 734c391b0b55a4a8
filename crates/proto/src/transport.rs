//! How Flotilla's processes dial and serve these protocols: one [`dial`] for every client
//! (worker → coordinator, worker → log-shipper, log-shipper → coordinator, fleetctl), and TLS
//! settings built from the PEM files named in the configuration — a server's certificate and,
//! for mutual TLS, the CA its clients' certificates must chain to; a client's trust roots
//! (the system's web PKI roots unless a CA file is given) and its own certificate.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url:?} is not a usable address: {message}")]
    Url { url: String, message: String },
    #[error("{url} uses https but no TLS settings were given for it")]
    HttpsWithoutTls { url: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
}

fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn identity(cert_file: &Path, key_file: &Path) -> Result<Identity, TransportError> {
    Ok(Identity::from_pem(read(cert_file)?, read(key_file)?))
}

/// A listener's TLS: its certificate chain and key; with `client_ca_file`, every client must
/// present a certificate chaining to it (mutual TLS).
pub fn server_tls(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: Option<&Path>,
) -> Result<ServerTlsConfig, TransportError> {
    let mut config = ServerTlsConfig::new().identity(identity(cert_file, key_file)?);
    if let Some(ca) = client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(config)
}

/// A dialer's TLS: the server must chain to `ca_file` (the web PKI roots when None); with a
/// certificate and key, the client presents them (mutual TLS).
pub fn client_tls(
    ca_file: Option<&Path>,
    identity_files: Option<(&Path, &Path)>,
) -> Result<ClientTlsConfig, TransportError> {
    let mut config = match ca_file {
        Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    if let Some((cert, key)) = identity_files {
        config = config.identity(identity(cert, key)?);
    }
    Ok(config)
}

/// An endpoint for `url`, over TLS when `tls` is given (the URL must then be https).
pub fn endpoint(url: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, TransportError> {
    let bad = |message: String| TransportError::Url {
        url: url.to_string(),
        message,
    };
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| bad(e.to_string()))?;
    match tls {
        Some(tls) => endpoint.tls_config(tls.clone()).map_err(|e| bad(e.to_string())),
        None if url.starts_with("https://") => Err(TransportError::HttpsWithoutTls { url: url.to_string() }),
        None => Ok(endpoint),
    }
}

/// Connects to `url` (see [`endpoint`]).
pub async fn dial(url: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, TransportError> {
    endpoint(url, tls)?
        .connect()
        .await
        .map_err(|e| TransportError::Connect {
            url: url.to_string(),
            // The transport error's own text is "transport error"; its source says what failed.
            message: std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let error = server_tls(
            Path::new("/nonexistent/cert.pem"),
            Path::new("/nonexistent/key.pem"),
            None,
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("cannot read /nonexistent/cert.pem:"),
            "{error}"
        );
    }

    #[test]
    fn https_needs_tls_settings() {
        let error = endpoint("https://coordinator:7600", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "https://coordinator:7600 uses https but no TLS settings were given for it"
        );
        assert!(endpoint("http://127.0.0.1:7600", None).is_ok());
        assert!(matches!(endpoint("not a url", None), Err(TransportError::Url { .. })));
    }
}
