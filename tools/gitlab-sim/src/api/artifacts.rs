//! Job artifacts: `POST /api/v4/jobs/:id/artifacts` (multipart upload by the running job) and
//! `GET /api/v4/jobs/:id/artifacts` (download of a dependency's archive with the *requesting*
//! job's token). `artifact_type`, `artifact_format` and `expire_in` are read from the query (the
//! official runner) and from multipart fields (other clients); the file part is `file`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::{authenticated_job, job_token, message, not_executing, query_param, status_body, App};
use crate::state::Artifact;

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The boundary of a `multipart/form-data` Content-Type.
fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&i| haystack[i] == needle[0] && haystack[i..].starts_with(needle))
}

/// Splits a multipart body into its parts (the whole body is in memory; artifacts here are small).
pub fn parse_multipart(content_type: &str, body: &Bytes) -> Option<Vec<Part>> {
    let delimiter = format!("--{}", boundary(content_type)?);
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, delimiter, 0)? + delimiter.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        pos += if body[pos..].starts_with(b"\r\n") {
            2
        } else {
            return None;
        };
        let headers_end = find(body, b"\r\n\r\n", pos)?;
        let headers = std::str::from_utf8(&body[pos..headers_end]).ok()?;
        let data_start = headers_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(delimiter);
        let data_end = find(body, &closing, data_start)?;
        let (mut name, mut filename) = (None, None);
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else { continue };
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            data: body.slice(data_start..data_end),
        });
        pos = data_end + closing.len();
    }
}

pub async fn upload(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = job_token(&headers, &uri, None);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = parse_multipart(content_type, &body);
    let max = app.settings.max_artifact_size;
    app.store.modify(|jobs| {
        let job = match authenticated_job(jobs, &id, token.as_deref()) {
            Ok(job) => job,
            Err(response) => return response,
        };
        if !job.state.is_executing() {
            return not_executing(job.state);
        }
        let Some(parts) = parts else {
            return message(
                StatusCode::BAD_REQUEST,
                "400 Bad request - expected multipart/form-data",
            );
        };
        let Some(file) = parts.iter().find(|p| p.name == "file") else {
            return message(StatusCode::BAD_REQUEST, "400 Bad request - file is missing");
        };
        if file.data.len() > max {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "413 Request Entity Too Large");
        }
        let field = |name: &str| {
            query_param(&uri, name).filter(|v| !v.is_empty()).or_else(|| {
                parts
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            })
        };
        let artifact = Artifact {
            filename: file.filename.clone().unwrap_or_else(|| "artifacts.zip".into()),
            artifact_type: field("artifact_type").unwrap_or_else(|| "archive".into()),
            artifact_format: field("artifact_format").unwrap_or_else(|| "zip".into()),
            expire_in: field("expire_in"),
            data: file.data.clone(),
        };
        tracing::info!(job = job.id, file = %artifact.filename, bytes = artifact.data.len(), "artifact uploaded");
        // One artifact per type, as GitLab keeps it: a re-upload replaces the earlier one.
        job.artifacts.retain(|a| a.artifact_type != artifact.artifact_type);
        job.artifacts.push(artifact);
        status_body(StatusCode::CREATED)
    })
}

pub async fn download(State(app): State<Arc<App>>, Path(id): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let token = job_token(&headers, &uri, None).or_else(|| query_param(&uri, "job_token"));
    let jobs = app.store.lock();
    if token.as_deref().and_then(|t| jobs.executing_by_token(t)).is_none() {
        return message(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    let archive = id
        .parse()
        .ok()
        .and_then(|id: u64| jobs.jobs.get(&id))
        .and_then(|dep| dep.artifacts.iter().find(|a| a.artifact_type == "archive"));
    match archive {
        Some(a) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", a.filename),
                ),
            ],
            Body::from(a.data.clone()),
        )
            .into_response(),
        None => message(StatusCode::NOT_FOUND, "404 Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_runner_style_upload() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"default.zip\"\r\n\
Content-Type: application/octet-stream\r\n\r\nPK\x03\x04\r\n--bin\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"expire_in\"\r\n\r\n1 week\r\n--XyZ--\r\n",
        );
        let parts = parse_multipart("multipart/form-data; boundary=\"XyZ\"", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "file");
        assert_eq!(parts[0].filename.as_deref(), Some("default.zip"));
        assert_eq!(&parts[0].data[..], b"PK\x03\x04\r\n--bin");
        assert_eq!(&parts[1].data[..], b"1 week");
    }

    #[test]
    fn refuses_non_multipart() {
        assert!(parse_multipart("application/json", &Bytes::from_static(b"{}")).is_none());
        assert!(parse_multipart("multipart/form-data; boundary=a", &Bytes::from_static(b"junk")).is_none());
    }
}
