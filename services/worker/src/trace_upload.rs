//! Sends a job's log to the log-shipper: bytes in order, each batch with its offset, each
//! resent until the shipper has it durably (it may not have opened the job's log yet, or
//! may restart), so no byte is lost and none is doubled (the shipper trims resent bytes).

use std::time::Duration;

use flotilla_proto::trace_sink_client::TraceSinkClient;
use flotilla_proto::TraceChunk;
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// Largest batch sent at once.
const MAX_BATCH: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("log-shipper unreachable at {0}: {1}")]
    Connect(String, String),
    #[error("the log-shipper takes no more of job {job_id}'s log")]
    Closed { job_id: u64 },
    #[error("gave up sending the log of job {job_id} at offset {offset}: {message}")]
    GaveUp { job_id: u64, offset: u64, message: String },
}

/// How much of a job's log the log-shipper holds durably (0 for a log it has not seen).
pub async fn durable_offset(
    shipper_url: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
    job_id: u64,
) -> Result<u64, UploadError> {
    let channel = flotilla_proto::transport::dial(shipper_url, tls)
        .await
        .map_err(|e| UploadError::Connect(shipper_url.into(), e.to_string()))?;
    match TraceSinkClient::new(channel)
        .offset(flotilla_proto::OffsetRequest { job_id })
        .await
    {
        Ok(reply) => Ok(reply.into_inner().durable_offset),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(0),
        Err(status) => Err(UploadError::Connect(shipper_url.into(), status.message().to_string())),
    }
}

/// The sending half: `send` queues bytes; dropping it ends the upload.
pub struct Upload {
    tx: mpsc::Sender<Vec<u8>>,
    task: tokio::task::JoinHandle<Result<u64, UploadError>>,
}

impl Upload {
    /// Starts uploading job `job_id`'s log, continuing from `offset` (bytes the shipper has).
    pub async fn start(
        shipper_url: &str,
        tls: Option<&tonic::transport::ClientTlsConfig>,
        job_id: u64,
        offset: u64,
    ) -> Result<Upload, UploadError> {
        let channel = flotilla_proto::transport::dial(shipper_url, tls)
            .await
            .map_err(|e| UploadError::Connect(shipper_url.into(), e.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(TraceSinkClient::new(channel), job_id, offset, rx));
        Ok(Upload { tx, task })
    }

    pub async fn send(&self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            let _ = self.tx.send(bytes).await;
        }
    }

    /// Waits until everything sent is durable; returns the total size of the log.
    pub async fn finish(self) -> Result<u64, UploadError> {
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| {
            Err(UploadError::GaveUp {
                job_id: 0,
                offset: 0,
                message: e.to_string(),
            })
        })
    }
}

async fn run(
    mut client: TraceSinkClient<Channel>,
    job_id: u64,
    offset: u64,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> Result<u64, UploadError> {
    // Bytes from `durable` on are kept until the shipper has them durably: it may hold the
    // tail back (a secret may be starting there) or restart; they are resent with each batch.
    let mut durable = offset;
    let mut unacked: Vec<u8> = Vec::new();
    while let Some(first) = rx.recv().await {
        unacked.extend_from_slice(&first);
        while unacked.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => unacked.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        let now_durable = match deliver(&mut client, job_id, durable, &unacked).await {
            Ok(offset) => offset,
            // Nothing more is wanted: drain what is still queued and report the size.
            Err(UploadError::Closed { .. }) => {
                let mut total = durable + unacked.len() as u64;
                while let Some(more) = rx.recv().await {
                    total += more.len() as u64;
                }
                return Ok(total);
            }
            Err(error) => return Err(error),
        };
        let done = (now_durable.saturating_sub(durable) as usize).min(unacked.len());
        unacked.drain(..done);
        durable += done as u64;
    }
    Ok(durable + unacked.len() as u64)
}

/// Sends `data` (the log from `offset`) until the shipper has taken it; returns its durable offset.
async fn deliver(
    client: &mut TraceSinkClient<Channel>,
    job_id: u64,
    offset: u64,
    data: &[u8],
) -> Result<u64, UploadError> {
    let mut delay = Duration::from_millis(20);
    let mut last_error = String::new();
    for _ in 0..200 {
        let chunk = TraceChunk {
            job_id,
            offset,
            data: data.to_vec(),
        };
        match client.append(tokio_stream::iter([chunk])).await {
            Ok(response) => match response.into_inner().message().await {
                Ok(Some(ack)) => return Ok(ack.durable_offset),
                Ok(None) => last_error = "no acknowledgement".into(),
                // GitLab takes no more of this log (the job was canceled or failed there).
                Err(status) if status.code() == tonic::Code::NotFound => return Err(UploadError::Closed { job_id }),
                Err(status) => last_error = status.message().to_string(),
            },
            Err(status) => last_error = status.message().to_string(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Err(UploadError::GaveUp {
        job_id,
        offset,
        message: last_error,
    })
}
