//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`): runs a command
//! in a running container's mount namespace with its env, streams stdout/stderr on
//! channels 1/2, takes stdin on channel 0 (EOF: `[255, 0]` in v5), and ends with the exit
//! Status on channel 3 followed by a normal close.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::logs::pick_container;
use crate::error::{ApiError, ApiResult};
use crate::faults::StreamKind;
use crate::kubelet::process::{self, Namespace, ProcessSpec};
use crate::query::Query;
use crate::resources::PODS;
use crate::SimState;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

struct ExecRequest {
    command: Vec<String>,
    stdin: bool,
    stderr: bool,
    tty: bool,
    pid: u32,
    spec: ProcessSpec,
}

/// Checks the request against the Pod; the same errors go to WebSocket and SPDY clients.
fn prepare(state: &SimState, namespace: &str, name: &str, query: &Query) -> ApiResult<ExecRequest> {
    let pod = state.store.get(PODS, namespace, name)?;
    let container = pick_container(&pod, query.get("container"))?;
    let command = query.all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let run = state
        .kubelet
        .runtime(namespace, name)
        .and_then(|r| r.container(&container))
        .filter(|run| run.pid.is_some())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container not found (\"{container}\")"
            ))
        })?;
    let tty = query.flag("tty");
    Ok(ExecRequest {
        command,
        stdin: query.flag("stdin"),
        stderr: query.flag("stderr") && !tty,
        tty,
        pid: run.pid.unwrap_or_default(),
        spec: run.spec,
    })
}

/// The WebSocket GET.
pub fn serve(
    state: Arc<SimState>,
    namespace: &str,
    name: &str,
    query: &Query,
    upgrade: Option<WebSocketUpgrade>,
) -> ApiResult<Response> {
    let request = prepare(&state, namespace, name, query)?;
    let Some(upgrade) = upgrade else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let upgrade = upgrade.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let drop_signal = state.faults.drop_signal(StreamKind::Exec);
    Ok(upgrade
        .on_upgrade(move |socket| async move {
            let v5 = socket.protocol().is_some_and(|p| p.as_bytes() == b"v5.channel.k8s.io");
            run(socket, request, v5, drop_signal).await;
        })
        .into_response())
}

/// kubectl's SPDY fallback (a POST): same checks, then a clear refusal.
pub fn refuse_spdy(state: &SimState, namespace: &str, name: &str, query: &Query) -> ApiResult<Response> {
    prepare(state, namespace, name, query)?;
    Err(ApiError::bad_request(
        "SPDY is not supported by kube-sim; use WebSockets",
    ))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::Binary(Bytes::from(bytes))
}

async fn run(socket: WebSocket, request: ExecRequest, v5: bool, mut drop_signal: crate::faults::DropSignal) {
    let (mut sink, mut stream) = socket.split();
    let mut spec = request.spec.clone();
    spec.argv = request.command.clone();
    spec.stdin = request.stdin;
    spec.mounts.clear();
    let mut child = match process::spawn_off_thread(spec.clone(), Namespace::JoinOf(request.pid)).await {
        Ok(child) => child,
        Err(error) => {
            // What a runtime reports for a command it cannot start.
            let code = if error.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let message = format!(
                "OCI runtime exec failed: exec failed: unable to start container process: {}",
                process::start_error_message(&request.command[0], &error)
            );
            let _ = sink.send(frame(STDERR, format!("{message}\n").as_bytes())).await;
            finish(&mut sink, &request.command, code).await;
            return;
        }
    };
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(32);
    let readers = {
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let merge_stderr = request.tty;
        let want_stderr = request.stderr || merge_stderr;
        let tx1 = out_tx.clone();
        let tx2 = out_tx.clone();
        let a = tokio::spawn(async move {
            if let Some(s) = stdout {
                pump(s, STDOUT, tx1).await;
            }
        });
        let b = tokio::spawn(async move {
            if let Some(s) = stderr {
                if want_stderr {
                    pump(s, if merge_stderr { STDOUT } else { STDERR }, tx2).await;
                } else {
                    let mut sink = tokio::io::sink();
                    let mut s = s;
                    let _ = tokio::io::copy(&mut s, &mut sink).await;
                }
            }
        });
        (a, b)
    };
    drop(out_tx);
    let mut client_gone = false;
    let mut output_done = false;
    loop {
        tokio::select! {
            out = out_rx.recv(), if !output_done => match out {
                Some(message) => {
                    if sink.send(message).await.is_err() {
                        client_gone = true;
                        break;
                    }
                }
                None => output_done = true,
            },
            incoming = stream.next(), if !client_gone => match incoming {
                Some(Ok(Message::Binary(data))) if !data.is_empty() => match data[0] {
                    STDIN => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(&data[1..]).await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    CLOSE if v5 && data.get(1) == Some(&STDIN) => stdin = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    client_gone = true;
                    stdin = None;
                }
                Some(Ok(_)) => {}
            },
            _ = drop_signal.dropped() => {
                client_gone = true;
                break;
            }
        }
        if output_done {
            break;
        }
    }
    if client_gone {
        if let Some(pid) = pid {
            process::signal_group(pid, libc::SIGKILL);
        }
        let _ = child.wait().await;
        return;
    }
    drop(stdin);
    let _ = readers.0.await;
    let _ = readers.1.await;
    let code = match child.wait().await {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        }
        Err(_) => 1,
    };
    finish(&mut sink, &request.command, code).await;
}

/// The end of every exec: the exit Status on channel 3, then a normal close.
async fn finish(sink: &mut (impl SinkExt<Message> + Unpin), command: &[String], code: i32) {
    let _ = sink
        .send(frame(ERROR, exit_status(command, code).to_string().as_bytes()))
        .await;
    let close = CloseFrame {
        code: 1000,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

async fn pump(mut source: impl tokio::io::AsyncRead + Unpin, channel: u8, tx: mpsc::Sender<Message>) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match source.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(channel, &buffer[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The channel-3 Status the kubelet sends for an exit code.
fn exit_status(command: &[String], code: i32) -> serde_json::Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", command.join(" ")),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}
