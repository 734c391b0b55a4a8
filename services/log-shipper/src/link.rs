//! The log-shipper's session with the coordinator: it receives `OpenTrace`/`CloseTrace` and
//! sends `TraceFlushed`/`TraceCancelRequested`, reconnecting with backoff when the
//! coordinator is away.

use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::shipper_gateway_client::ShipperGatewayClient;
use flotilla_proto::{shipper_command, shipper_message, ShipperHello, ShipperMessage, TraceTail};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::service::Shipper;

pub struct LinkConfig {
    pub coordinator_url: String,
    pub token: Option<flotilla_gitlab::Secret>,
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    pub shipper_id: String,
    /// This shipper's trace sink, as workers reach it.
    pub sink_url: String,
}

/// Keeps a session open until `shutdown`; `reports` are the shipper's messages for the
/// coordinator (kept while disconnected and sent on the next session).
pub async fn run(
    config: LinkConfig,
    shipper: Arc<Shipper>,
    mut reports: mpsc::UnboundedReceiver<ShipperMessage>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match session(&config, &shipper, &mut reports, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, coordinator = %config.coordinator_url, "coordinator session ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn session(
    config: &LinkConfig,
    shipper: &Arc<Shipper>,
    reports: &mut mpsc::UnboundedReceiver<ShipperMessage>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let channel = flotilla_proto::transport::dial(&config.coordinator_url, config.tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let token = config.token.clone();
    let mut client = ShipperGatewayClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
        if let Some(token) = &token {
            let value = format!("Bearer {}", token.expose())
                .parse()
                .map_err(|_| tonic::Status::invalid_argument("bad token"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    });
    let (outgoing, outgoing_rx) = mpsc::channel(256);
    let hello = ShipperMessage {
        kind: Some(shipper_message::Kind::Hello(ShipperHello {
            shipper_id: config.shipper_id.clone(),
            sink_url: config.sink_url.clone(),
        })),
    };
    outgoing.send(hello).await.map_err(|e| e.to_string())?;
    let mut commands = client
        .session(ReceiverStream::new(outgoing_rx))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    loop {
        tokio::select! {
            command = commands.message() => match command.map_err(|e| e.to_string())? {
                Some(command) => match command.kind {
                    Some(shipper_command::Kind::Open(open)) => {
                        let job_id = open.job_id;
                        if let Err(error) = shipper.open(open) {
                            tracing::error!(job_id, %error, "cannot open the job's log");
                        }
                    }
                    Some(shipper_command::Kind::Close(close)) => shipper.close(&close),
                    Some(shipper_command::Kind::Tail(tail)) => {
                        let from = shipper.clone();
                        let (job_id, max) = (tail.job_id, u64::from(tail.max_bytes));
                        // A file read: off the async executor.
                        let data = tokio::task::spawn_blocking(move || from.tail(job_id, max)).await.ok().flatten();
                        let reply = ShipperMessage {
                            kind: Some(shipper_message::Kind::Tail(TraceTail {
                                request_id: tail.request_id,
                                found: data.is_some(),
                                data: data.unwrap_or_default(),
                            })),
                        };
                        outgoing.send(reply).await.map_err(|e| e.to_string())?;
                    }
                    None => {}
                },
                None => return Err("the coordinator closed the session".into()),
            },
            report = reports.recv() => match report {
                Some(report) => outgoing.send(report).await.map_err(|e| e.to_string())?,
                None => return Ok(()),
            },
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}
