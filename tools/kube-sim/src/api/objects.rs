//! The verbs on stored objects: list, create, get, replace, patch, delete and
//! deletecollection, with the real server's admission checks and graceful Pod deletion.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use super::filter::Filter;
use super::{json_response, wants_table};
use crate::defaults::{apply_create_defaults, merge_string_data, now, resolve_generate_name};
use crate::error::{ApiError, ApiResult};
use crate::patch::{apply_patch, PatchError, PatchKind};
use crate::query::Query;
use crate::resources::{Resource, NAMESPACES, PODS, SECRETS, SERVICE_ACCOUNTS};
use crate::table::table;
use crate::validation::{self, FieldError};
use crate::SimState;

pub fn list(
    state: &SimState,
    resource: Resource,
    namespace: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let filter = Filter::from_query(resource, namespace, query)?;
    let (items, rv) = state.store.list(resource, namespace, |obj| filter.matches(obj));
    if wants_table(headers) {
        return Ok(json_response(
            StatusCode::OK,
            table(resource.plural, &items, &rv.to_string(), chrono::Utc::now(), true),
        ));
    }
    let items: Vec<Value> = items.into_iter().map(strip_type_meta).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"kind": resource.list_kind(), "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

/// The real server omits kind/apiVersion inside list items.
fn strip_type_meta(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    object
}

pub fn get(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let object = state.store.get(resource, namespace, name)?;
    Ok(render_one(resource, object, headers, StatusCode::OK))
}

fn render_one(resource: Resource, object: Value, headers: &HeaderMap, code: StatusCode) -> Response {
    if wants_table(headers) {
        let rv = object["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
        return json_response(code, table(resource.plural, &[object], &rv, chrono::Utc::now(), true));
    }
    json_response(code, object)
}

pub fn parse_body(body: &Bytes, headers: &HeaderMap) -> ApiResult<Value> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.contains("protobuf") {
        return crate::protobuf::decode(body).map_err(|e| match e {
            crate::protobuf::ProtobufError::UnsupportedKind(_) => ApiError::unsupported_media_type(content_type),
            other => ApiError::bad_request(other.to_string()),
        });
    }
    if content_type.contains("yaml") {
        return serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the object provided is unrecognized or malformed: {e}")))
}

fn check_type_meta(resource: Resource, object: &Value) -> ApiResult<()> {
    if let Some(kind) = object["kind"].as_str() {
        if kind != resource.kind {
            return Err(ApiError::bad_request(format!("the API version in the data (v1) does not match the expected API version (v1), or kind {kind} is not {}", resource.kind)));
        }
    }
    Ok(())
}

fn validate(resource: Resource, object: &Value) -> Vec<FieldError> {
    match resource {
        PODS => validation::validate_pod(object),
        SECRETS => validation::validate_secret(object),
        crate::resources::CONFIG_MAPS => validation::validate_config_map(object),
        NAMESPACES => validation::validate_namespace(object),
        _ => validation::validate_object_meta(&object["metadata"], resource.namespaced),
    }
}

fn invalid(resource: Resource, object: &Value, errors: &[FieldError]) -> ApiError {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    ApiError::invalid(resource.kind, resource.plural, name, errors)
}

/// Admission: the namespace must exist (and not be terminating), a Pod's service account too.
fn admit(state: &SimState, resource: Resource, namespace: &str, object: &Value) -> ApiResult<()> {
    if !resource.namespaced {
        return Ok(());
    }
    let ns = state
        .store
        .get(NAMESPACES, "", namespace)
        .map_err(|_| ApiError::not_found("namespaces", namespace))?;
    if ns["status"]["phase"] == "Terminating" {
        return Err(ApiError::new(403, "Forbidden", format!("{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated", resource.plural, object["metadata"]["name"].as_str().unwrap_or(""))));
    }
    if resource == PODS {
        let account = object["spec"]["serviceAccountName"].as_str().unwrap_or("default");
        if state.store.try_get(SERVICE_ACCOUNTS, namespace, account).is_none() {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("pods \"{}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found", object["metadata"]["name"].as_str().unwrap_or("")),
            ));
        }
    }
    Ok(())
}

pub fn create(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let mut object = parse_body(body, headers)?;
    check_type_meta(resource, &object)?;
    if resource.namespaced {
        if let Some(body_ns) = object["metadata"]["namespace"].as_str().filter(|ns| !ns.is_empty()) {
            if body_ns != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    resolve_generate_name(&mut object);
    let errors = validate(resource, &object);
    if !errors.is_empty() {
        return Err(invalid(resource, &object, &errors));
    }
    admit(state, resource, namespace, &object)?;
    apply_create_defaults(resource, namespace, &mut object);
    if query.get("dryRun").is_some() {
        object["metadata"]["resourceVersion"] = json!("");
        return Ok(render_one(resource, object, headers, StatusCode::CREATED));
    }
    let created = state.store.create(resource, namespace, object)?;
    if resource == NAMESPACES {
        ensure_default_service_account(state, created["metadata"]["name"].as_str().unwrap_or_default());
    }
    Ok(render_one(resource, created, headers, StatusCode::CREATED))
}

/// Every namespace gets a `default` ServiceAccount, as the service-account controller does.
pub fn ensure_default_service_account(state: &SimState, namespace: &str) {
    let mut account = json!({"metadata": {"name": "default"}});
    apply_create_defaults(SERVICE_ACCOUNTS, namespace, &mut account);
    let _ = state.store.create(SERVICE_ACCOUNTS, namespace, account);
}

/// PUT: replace the object; a stale resourceVersion is a 409 Conflict.
pub fn replace(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    name: &str,
    status_only: bool,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let mut incoming = parse_body(body, headers)?;
    check_type_meta(resource, &incoming)?;
    if incoming["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if resource == SECRETS {
        merge_string_data(&mut incoming);
    }
    let updated = state.store.update(resource, namespace, name, |current| {
        let sent_rv = incoming["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !sent_rv.is_empty() && sent_rv != current["metadata"]["resourceVersion"].as_str().unwrap_or("") {
            return Err(ApiError::conflict(resource.plural, name));
        }
        let mut next = if status_only {
            let mut next = current.clone();
            next["status"] = incoming["status"].clone();
            next
        } else {
            let mut next = incoming.clone();
            // The status is only written through /status.
            next["status"] = current["status"].clone();
            keep_server_metadata(current, &mut next);
            next
        };
        next["apiVersion"] = json!("v1");
        next["kind"] = json!(resource.kind);
        check_update(resource, current, &next)?;
        *current = next;
        Ok(())
    })?;
    Ok(json_response(
        StatusCode::OK,
        after_write(state, resource, namespace, name, updated),
    ))
}

fn keep_server_metadata(current: &Value, next: &mut Value) {
    for key in ["deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
        if !current["metadata"][key].is_null() {
            next["metadata"][key] = current["metadata"][key].clone();
        }
    }
}

fn check_update(resource: Resource, current: &Value, next: &Value) -> ApiResult<()> {
    let mut errors = validate(resource, next);
    if resource == PODS {
        errors.extend(validation::validate_pod_update(current, next));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(resource, next, &errors))
    }
}

pub fn patch(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    name: &str,
    status_only: bool,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind =
        PatchKind::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    // Server-side apply creates what does not exist yet.
    if matches!(kind, PatchKind::Apply) && state.store.try_get(resource, namespace, name).is_none() {
        let mut object = parse_body(body, &HeaderMap::new())?;
        object["metadata"]["name"] = json!(name);
        let body = Bytes::from(serde_json::to_vec(&object).unwrap_or_default());
        return create(state, resource, namespace, &Query::default(), &HeaderMap::new(), &body);
    }
    let updated = state.store.update(resource, namespace, name, |current| {
        let mut next = apply_patch(kind, current, body).map_err(|e| match e {
            PatchError::BadRequest(m) => ApiError::bad_request(m),
            PatchError::Invalid(m) => ApiError::new(422, "Invalid", m),
        })?;
        if status_only {
            let status = next["status"].clone();
            next = current.clone();
            next["status"] = status;
        } else {
            next["status"] = current["status"].clone();
        }
        if resource == SECRETS {
            merge_string_data(&mut next);
        }
        let sent_rv = next["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !sent_rv.is_empty() && sent_rv != current["metadata"]["resourceVersion"].as_str().unwrap_or("") {
            return Err(ApiError::conflict(resource.plural, name));
        }
        check_update(resource, current, &next)?;
        *current = next;
        Ok(())
    })?;
    Ok(json_response(
        StatusCode::OK,
        after_write(state, resource, namespace, name, updated),
    ))
}

/// An object waiting on finalizers goes once they are cleared (Pods: once terminated).
fn after_write(state: &SimState, resource: Resource, namespace: &str, name: &str, object: Value) -> Value {
    let deleting = object["metadata"]["deletionTimestamp"].is_string();
    let no_finalizers = object["metadata"]["finalizers"].as_array().is_none_or(|f| f.is_empty());
    let pod_done = resource != PODS
        || matches!(object["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        || object["spec"]["nodeName"].is_null();
    if deleting && no_finalizers && pod_done {
        let _ = state.store.remove(resource, namespace, name);
    }
    object
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteOptions {
    grace_period_seconds: Option<i64>,
    preconditions: Option<Preconditions>,
    dry_run: Option<Vec<String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

fn delete_options(query: &Query, body: &Bytes) -> ApiResult<DeleteOptions> {
    let mut options: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(grace) = query.int("gracePeriodSeconds")? {
        options.grace_period_seconds = Some(grace);
    }
    if query.get("dryRun").is_some() {
        options.dry_run = Some(vec!["All".into()]);
    }
    Ok(options)
}

pub fn delete(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    name: &str,
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let options = delete_options(query, body)?;
    let current = state.store.get(resource, namespace, name)?;
    if let Some(pre) = &options.preconditions {
        let uid_ok = pre
            .uid
            .as_ref()
            .is_none_or(|u| current["metadata"]["uid"] == u.as_str());
        let rv_ok = pre
            .resource_version
            .as_ref()
            .is_none_or(|rv| current["metadata"]["resourceVersion"] == rv.as_str());
        if !uid_ok || !rv_ok {
            return Err(ApiError::conflict(resource.plural, name));
        }
    }
    if options.dry_run.is_some() {
        return Ok(json_response(StatusCode::OK, current));
    }
    let deleted = delete_object(state, resource, namespace, name, options.grace_period_seconds)?;
    if resource == PODS {
        return Ok(render_one(resource, deleted, headers, StatusCode::OK));
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": name, "kind": resource.plural, "uid": deleted["metadata"]["uid"]}}),
    ))
}

/// Deletes one object: graceful for running Pods, held by finalizers, else at once.
fn delete_object(
    state: &SimState,
    resource: Resource,
    namespace: &str,
    name: &str,
    grace: Option<i64>,
) -> ApiResult<Value> {
    let current = state.store.get(resource, namespace, name)?;
    let has_finalizers = current["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let grace = if resource == PODS {
        let terminal = matches!(current["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
        let scheduled = current["spec"]["nodeName"].is_string();
        let requested =
            grace.unwrap_or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30));
        if terminal || !scheduled {
            0
        } else {
            requested.max(0)
        }
    } else {
        0
    };
    if resource == NAMESPACES {
        return delete_namespace(state, name);
    }
    if grace > 0 || has_finalizers {
        return state.store.update(resource, namespace, name, |obj| {
            let meta = &mut obj["metadata"];
            let existing = meta["deletionGracePeriodSeconds"].as_i64();
            // A second delete may shorten the grace period, never lengthen it.
            let grace = existing.map_or(grace, |g| g.min(grace));
            if existing != Some(grace) || meta["deletionTimestamp"].is_null() {
                meta["deletionGracePeriodSeconds"] = json!(grace);
                meta["deletionTimestamp"] = json!(crate::defaults::timestamp(
                    chrono::Utc::now() + chrono::Duration::seconds(grace)
                ));
            }
            Ok(())
        });
    }
    state.store.remove(resource, namespace, name)
}

/// A namespace goes Terminating, its contents are deleted, then it goes.
fn delete_namespace(state: &SimState, name: &str) -> ApiResult<Value> {
    if matches!(name, "default" | "kube-system" | "kube-public") {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    let terminating = state.store.update(NAMESPACES, "", name, |ns| {
        ns["status"]["phase"] = json!("Terminating");
        if ns["metadata"]["deletionTimestamp"].is_null() {
            ns["metadata"]["deletionTimestamp"] = json!(now());
        }
        Ok(())
    })?;
    for resource in crate::resources::ALL.iter().filter(|r| r.namespaced) {
        let (objects, _) = state.store.list(*resource, Some(name), |_| true);
        for obj in objects {
            let _ = state
                .store
                .remove(*resource, name, obj["metadata"]["name"].as_str().unwrap_or_default());
        }
    }
    state.store.remove(NAMESPACES, "", name)?;
    Ok(terminating)
}

pub fn delete_collection(
    state: &SimState,
    resource: Resource,
    namespace: Option<&str>,
    query: &Query,
    body: &Bytes,
) -> ApiResult<Response> {
    let options = delete_options(query, body)?;
    let filter = Filter::from_query(resource, namespace, query)?;
    let (items, rv) = state.store.list(resource, namespace, |obj| filter.matches(obj));
    let mut deleted = Vec::new();
    for item in items {
        let ns = item["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
        if options.dry_run.is_none() {
            if let Ok(obj) = delete_object(state, resource, &ns, &name, options.grace_period_seconds) {
                deleted.push(strip_type_meta(obj));
            }
        } else {
            deleted.push(strip_type_meta(item));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"kind": resource.list_kind(), "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
