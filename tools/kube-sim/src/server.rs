//! The listening side: TCP (plain or TLS with a self-signed CA), authentication, and the
//! kubeconfig that both kube-rs and kubectl use unchanged.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::Router;
use base64::Engine;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// What the connection told us about the client, for authentication.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer {
    /// The client presented a certificate our CA signed (rustls verified it).
    pub client_cert: bool,
}

/// Bearer-token authentication; client certificates are checked by TLS itself.
pub struct Auth {
    token: Option<String>,
}

impl Auth {
    pub fn new(token: Option<String>) -> Auth {
        Auth { token }
    }

    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else { return true };
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|sent| sent.trim() == token)
    }
}

/// The self-signed CA, the server certificate and a client certificate, as PEM.
pub struct Credentials {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("generating certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Tls(String),
    #[error("writing kubeconfig {0}: {1}")]
    Kubeconfig(String, std::io::Error),
}

impl Credentials {
    pub fn generate(name: &str) -> Result<Credentials, ServerError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("kube-sim-ca-{name}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key)?;
        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca, &ca_key)?;
        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim-admin");
        client_params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key)?;
        Ok(Credentials {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    fn tls_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let tls = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).map_err(|e| tls(&e))?)
            .map_err(|e| tls(&e))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls(&e))?;
        let certs = vec![CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).map_err(|e| tls(&e))?];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).map_err(|e| tls(&e))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(&e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| tls(&e))?;
        // HTTP/1.1 only: kubectl would otherwise pick h2, which this server does not speak.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|e| ServerError::Bind(addr, e))
}

/// Serves `router` on `listener` until `shutdown` turns true.
pub fn serve(
    listener: TcpListener,
    router: Router,
    credentials: Option<&Credentials>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServerError> {
    let acceptor = credentials.map(Credentials::tls_acceptor).transpose()?;
    Ok(tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        let Ok(tls) = acceptor.accept(stream).await else { return };
                        let peer = Peer {
                            client_cert: tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()),
                        };
                        serve_connection(tls, router, peer).await;
                    }
                    None => serve_connection(stream, router, Peer::default()).await,
                }
            });
        }
    }))
}

async fn serve_connection<S>(stream: S, router: Router, peer: Peer)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(peer);
        request
    });
    let service = TowerToHyperService::new(service);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

/// Writes the kubeconfig atomically (a reader never sees half a file).
pub fn write_kubeconfig(
    path: &Path,
    name: &str,
    server: &str,
    token: Option<&str>,
    credentials: Option<&Credentials>,
) -> Result<(), ServerError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cluster = serde_json::json!({"server": server});
    let mut user = serde_json::json!({});
    if let Some(c) = credentials {
        cluster["certificate-authority-data"] = b64(&c.ca_pem).into();
        user["client-certificate-data"] = b64(&c.client_cert_pem).into();
        user["client-key-data"] = b64(&c.client_key_pem).into();
    }
    if let Some(t) = token {
        user["token"] = t.into();
    }
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": format!("{name}-admin"), "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": format!("{name}-admin"), "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    });
    let text = serde_yaml::to_string(&config)
        .map_err(|e| ServerError::Kubeconfig(path.display().to_string(), std::io::Error::other(e)))?;
    let io = |e| ServerError::Kubeconfig(path.display().to_string(), e);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temp = path.with_extension("kube-sim-tmp");
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}
