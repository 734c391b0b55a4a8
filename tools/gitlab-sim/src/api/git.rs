//! Serving the project's repository at `/<project>.git/...` to `git clone`/`git fetch`.
//!
//! Requests go through `git http-backend` (CGI), which serves both the smart protocol and the
//! dumb protocol's static files (`info/refs`, `objects/...`). The smart protocol is needed
//! because the job payload asks for a shallow fetch (`depth: 20`), which git refuses over the dumb
//! protocol ("dumb http transport does not support shallow capabilities").
//!
//! Like GitLab, only HTTP basic auth as `gitlab-ci-token` with the token of an executing job gets
//! in; anything else is 401 with `WWW-Authenticate: Basic`, so git fails with "Authentication
//! failed" instead of hanging. Pushes are refused.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tokio::io::AsyncWriteExt;

use super::{message, query_param, App};
use crate::git::git_command;

/// Largest request body git sends us (fetch negotiation; pushes are refused anyway).
const MAX_GIT_REQUEST: usize = 16 << 20;

/// Fallback route: the repository if the path is under `/<project>.git/`, else 404.
pub async fn serve_or_not_found(State(app): State<Arc<App>>, request: Request) -> Response {
    let prefix = format!("/{}.git/", app.project.path);
    let Some(rest) = request.uri().path().strip_prefix(&prefix).map(str::to_string) else {
        return message(StatusCode::NOT_FOUND, "404 Not Found");
    };
    if !authorized(&app, request.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"GitLab\"")],
            "HTTP Basic: Access denied\n",
        )
            .into_response();
    }
    let service = query_param(request.uri(), "service");
    if rest == "git-receive-pack" || service.as_deref() == Some("git-receive-pack") {
        return message(
            StatusCode::FORBIDDEN,
            "403 Forbidden - pushing is not supported by gitlab-sim",
        );
    }
    let method = match *request.method() {
        Method::GET | Method::HEAD => "GET",
        Method::POST => "POST",
        _ => return message(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
    };
    let cgi = CgiRequest {
        method,
        path_info: format!("{prefix}{rest}").trim_end_matches('/').to_string(),
        query: request.uri().query().unwrap_or("").to_string(),
        headers: request.headers().clone(),
    };
    let body = match to_bytes(request.into_body(), MAX_GIT_REQUEST).await {
        Ok(body) => body,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "413 Request Entity Too Large"),
    };
    match http_backend(&app.project.repository.root, cgi, body).await {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(error = %err, "git http-backend failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error")
        }
    }
}

/// Basic auth as `gitlab-ci-token` with the token of an executing job.
fn authorized(app: &App, headers: &HeaderMap) -> bool {
    let Some(credentials) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
    else {
        return false;
    };
    match credentials.split_once(':') {
        Some(("gitlab-ci-token", token)) => app.store.lock().executing_by_token(token).is_some(),
        _ => false,
    }
}

/// What the CGI needs from the HTTP request.
struct CgiRequest {
    method: &'static str,
    path_info: String,
    query: String,
    headers: HeaderMap,
}

/// Runs `git http-backend` for one request and turns its CGI output into a response.
async fn http_backend(root: &Path, request: CgiRequest, body: Bytes) -> Result<Response, String> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut cmd = git_command();
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &request.path_info)
        .env("REQUEST_METHOD", request.method)
        .env("QUERY_STRING", &request.query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("HTTP_GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "gitlab-ci-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run git http-backend: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // Written concurrently with reading the output, so a large exchange cannot deadlock on pipes.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let _ = writer.await;
    if output.stdout.is_empty() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    parse_cgi(&output.stdout)
}

/// Splits CGI output into status, headers and body.
fn parse_cgi(out: &[u8]) -> Result<Response, String> {
    let (head_len, sep_len) = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .ok_or("CGI output has no header end")?;
    let head = std::str::from_utf8(&out[..head_len]).map_err(|e| e.to_string())?;
    let mut response = Response::new(Body::from(out[head_len + sep_len..].to_vec()));
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
            *response.status_mut() = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
        } else if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.trim()), HeaderValue::from_str(value)) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgi_output() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope").unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n001e").unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(parse_cgi(b"garbage").is_err());
    }
}
