//! The log-shipper put together: the trace sink server and the session with the
//! coordinator, until `shutdown`. The binary maps its config file onto [`Settings`].

use std::net::SocketAddr;
use std::path::PathBuf;

use flotilla_proto::trace_sink_server::TraceSinkServer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::link::{self, LinkConfig};
use crate::service::{Shipper, TraceSinkService};
use crate::ship::ShipTiming;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub coordinator_url: String,
    pub token: Option<flotilla_gitlab::Secret>,
    pub shipper_id: String,
    /// The trace sink's URL as workers reach it (default: `http://<listen address>`).
    pub advertise_url: Option<String>,
    pub timing: ShipTiming,
    /// TLS (mutual with a client CA) on the trace sink; None: plain HTTP/2.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// TLS to the coordinator; None: plain HTTP/2.
    pub coordinator_tls: Option<tonic::transport::ClientTlsConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), RunError>>,
}

pub async fn start(settings: Settings, shutdown: CancellationToken) -> Result<Running, RunError> {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let shipper = Shipper::new(settings.data_dir.clone(), reports_tx, settings.timing);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| RunError::Listen(settings.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| RunError::Listen(settings.listen, e))?;
    // Workers reach the sink where the shipper listens, unless told otherwise (e.g. a Service).
    let sink_url = settings.advertise_url.clone().unwrap_or_else(|| {
        let scheme = if settings.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}")
    });
    let link = LinkConfig {
        coordinator_url: settings.coordinator_url.clone(),
        token: settings.token.clone(),
        shipper_id: settings.shipper_id.clone(),
        sink_url,
        tls: settings.coordinator_tls.clone(),
    };
    tokio::spawn(link::run(link, shipper.clone(), reports, shutdown.clone()));
    tracing::info!(%addr, "log-shipper listening");
    let task = tokio::spawn(async move {
        let builder = tonic::transport::Server::builder();
        let mut builder = match settings.tls {
            Some(tls) => builder.tls_config(tls)?,
            None => builder,
        };
        builder
            .add_service(TraceSinkServer::new(TraceSinkService(shipper)))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            )
            .await?;
        Ok(())
    });
    Ok(Running { addr, task })
}
