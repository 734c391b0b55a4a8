//! Kubernetes' patch flavours, applied to objects as JSON: kube-sim's PATCH verbs and the
//! worker's `pod_spec` patches (`FF_USE_ADVANCED_POD_SPEC_CONFIGURATION`) use the same code.
//!
//! `kubectl patch`, `kubectl apply`, `kubectl edit` and kube-rs send a PATCH body whose
//! `Content-Type` names one of four patch flavours. [`apply_patch`] applies a body to the
//! stored object (a `serde_json::Value` in the API's camelCase JSON) and returns the
//! patched object; storing it, validating it and bumping `resourceVersion` are the
//! caller's job.
//!
//! * JSON patch (RFC 6902) and JSON merge patch (RFC 7386) come from the `json_patch`
//!   crate.
//! * Strategic merge patch is implemented here for the kinds kube-sim serves (Pods and their
//!   specs, Secrets, ConfigMaps, Namespaces, Events). Instead of the per-type Go struct tags
//!   the apiserver reads, the patch strategy of a list is looked up by its field name
//!   alone, whatever its depth: that is unambiguous for those kinds.
//! * Server-side apply is approximated as a strategic merge of the applied
//!   configuration into the stored object (no field managers, no conflicts).

use serde_json::{Map, Value};

/// The four PATCH flavours, told apart by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`: an RFC 6902 list of operations.
    Json,
    /// `application/merge-patch+json`: an RFC 7386 merge patch.
    Merge,
    /// `application/strategic-merge-patch+json`: Kubernetes' strategic merge patch.
    StrategicMerge,
    /// `application/apply-patch+yaml`: server-side apply (body accepted as JSON only).
    Apply,
}

impl PatchKind {
    /// The patch kind a `Content-Type` header names, ignoring parameters such as
    /// `; charset=utf-8`. `None` for anything else (the apiserver answers 415).
    pub fn from_content_type(content_type: &str) -> Option<PatchKind> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match media_type.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON or does not have the shape the patch kind needs (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation failed: a `test` mismatch, a missing path (HTTP 422).
    #[error("{0}")]
    Invalid(String),
}

/// Applies a PATCH `body` of the given kind to `target` and returns the patched object.
/// `target` is left untouched.
pub fn apply_patch(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch = parse_body(body)?;
    match kind {
        PatchKind::Json => json_patch_op(target, patch),
        PatchKind::Merge => merge_patch(target, &patch),
        PatchKind::StrategicMerge | PatchKind::Apply => strategic_merge_patch(target, &patch),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|e| PatchError::BadRequest(format!("error decoding patch: {e}")))
}

fn json_patch_op(target: &Value, patch: Value) -> Result<Value, PatchError> {
    let operations: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| PatchError::BadRequest(format!("invalid JSON patch: {e}")))?;
    let mut doc = target.clone();
    json_patch::patch(&mut doc, &operations).map_err(|e| PatchError::Invalid(e.to_string()))?;
    Ok(doc)
}

fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    // RFC 7386 would let a non-object patch replace the whole document; the apiserver
    // refuses that, since the result could never be a Kubernetes object.
    require_object(patch)?;
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

fn require_object(patch: &Value) -> Result<&Map<String, Value>, PatchError> {
    patch
        .as_object()
        .ok_or_else(|| PatchError::BadRequest("the patch body must be a JSON object".to_string()))
}

// ---------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------

/// `"$patch": "replace" | "delete" | "merge"` in a map or a list element.
const PATCH_DIRECTIVE: &str = "$patch";
/// `"$retainKeys": [..]`: keys of this map that survive the merge.
const RETAIN_KEYS: &str = "$retainKeys";
/// `"$setElementOrder/<list>": [..]`: the order the merged `<list>` must have.
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
/// `"$deleteFromPrimitiveList/<list>": [..]`: values to drop from a primitive `<list>`.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// How a list field is patched, from its `patchStrategy`/`patchMergeKey` struct tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Lists of objects merged element by element on this key.
    MergeByKey(&'static str),
    /// Lists of scalars merged as a set union (`patchStrategy:"merge"` without a key).
    MergePrimitives,
    /// Everything else: the patch's list replaces the stored one.
    Replace,
}

fn list_strategy(field: &str) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses" => ListStrategy::MergeByKey("name"),
        "ports" => ListStrategy::MergeByKey("containerPort"),
        "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeByKey("devicePath"),
        "hostAliases" => ListStrategy::MergeByKey("ip"),
        "ownerReferences" => ListStrategy::MergeByKey("uid"),
        "conditions" => ListStrategy::MergeByKey("type"),
        // ObjectMeta.finalizers is `patchStrategy:"merge"`: kubectl edit/apply send only
        // the added finalizers plus $setElementOrder, so replacing would drop the rest.
        "finalizers" => ListStrategy::MergePrimitives,
        _ => ListStrategy::Replace,
    }
}

fn strategic_merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let patch = require_object(patch)?;
    let original = target.as_object().cloned().unwrap_or_default();
    // A top-level `$patch: delete` leaves an empty object, as in the apiserver.
    let merged = merge_map(original, patch)?.unwrap_or_default();
    Ok(Value::Object(merged))
}

/// Merges `patch` into `original`. `None` means the patch deletes the whole map.
fn merge_map(
    original: Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    match patch_directive(patch)? {
        Some(MapDirective::Delete) => return Ok(None),
        Some(MapDirective::Replace) => return merge_map(Map::new(), &without_directive(patch)),
        None => {}
    }
    let mut result = original;
    delete_from_primitive_lists(&mut result, patch)?;
    for (key, value) in patch {
        if !key.starts_with('$') {
            merge_field(&mut result, key, value)?;
        }
    }
    set_element_orders(&mut result, patch)?;
    retain_keys(&mut result, patch)?;
    Ok(Some(result))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapDirective {
    Delete,
    Replace,
}

fn patch_directive(patch: &Map<String, Value>) -> Result<Option<MapDirective>, PatchError> {
    match patch.get(PATCH_DIRECTIVE) {
        None => Ok(None),
        Some(Value::String(s)) if s == "merge" => Ok(None),
        Some(Value::String(s)) if s == "delete" => Ok(Some(MapDirective::Delete)),
        Some(Value::String(s)) if s == "replace" => Ok(Some(MapDirective::Replace)),
        Some(other) => Err(PatchError::BadRequest(format!(
            "Unknown patch type: {other} in map: {}",
            Value::Object(patch.clone())
        ))),
    }
}

fn without_directive(patch: &Map<String, Value>) -> Map<String, Value> {
    let mut copy = patch.clone();
    copy.remove(PATCH_DIRECTIVE);
    copy
}

fn merge_field(result: &mut Map<String, Value>, key: &str, value: &Value) -> Result<(), PatchError> {
    match value {
        Value::Null => {
            result.remove(key);
        }
        Value::Object(patch_map) => {
            let base = match result.remove(key) {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            if let Some(merged) = merge_map(base, patch_map)? {
                result.insert(key.to_string(), Value::Object(merged));
            }
        }
        Value::Array(items) => {
            let merged = merge_list(key, result.remove(key), items)?;
            result.insert(key.to_string(), Value::Array(merged));
        }
        scalar => {
            result.insert(key.to_string(), scalar.clone());
        }
    }
    Ok(())
}

fn merge_list(field: &str, original: Option<Value>, patch: &[Value]) -> Result<Vec<Value>, PatchError> {
    // A `{"$patch": "replace"}` element makes the rest of the patch list the new list.
    if patch.iter().any(is_replace_marker) {
        return clean_list(patch.iter().filter(|item| !is_replace_marker(item)));
    }
    let original = match original {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    match list_strategy(field) {
        ListStrategy::MergeByKey(merge_key) => merge_keyed_list(original, patch, merge_key),
        ListStrategy::MergePrimitives => Ok(merge_primitive_list(original, patch)),
        ListStrategy::Replace => clean_list(patch.iter()),
    }
}

fn is_replace_marker(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|map| map.len() == 1 && map.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("replace"))
}

/// The patch's elements as they will be stored: directives resolved and stripped,
/// elements marked `$patch: delete` dropped.
fn clean_list<'a>(items: impl Iterator<Item = &'a Value>) -> Result<Vec<Value>, PatchError> {
    let mut cleaned = Vec::new();
    for item in items {
        match item {
            Value::Object(map) => {
                if let Some(element) = merge_map(Map::new(), map)? {
                    cleaned.push(Value::Object(element));
                }
            }
            other => cleaned.push(other.clone()),
        }
    }
    Ok(cleaned)
}

fn merge_keyed_list(mut result: Vec<Value>, patch: &[Value], merge_key: &str) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Some(patch_map) = item.as_object() else {
            result.push(item.clone());
            continue;
        };
        let position = patch_map
            .get(merge_key)
            .and_then(|key| result.iter().position(|el| el.get(merge_key) == Some(key)));
        match position {
            Some(index) => {
                let base = match result.remove(index) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                // `$patch: delete` yields None: the element stays removed.
                if let Some(merged) = merge_map(base, patch_map)? {
                    result.insert(index, Value::Object(merged));
                }
            }
            None => {
                if let Some(element) = merge_map(Map::new(), patch_map)? {
                    result.push(Value::Object(element));
                }
            }
        }
    }
    Ok(result)
}

fn merge_primitive_list(mut result: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    for item in patch {
        if !result.contains(item) {
            result.push(item.clone());
        }
    }
    result
}

/// The list a `$<directive>/<list>` key applies to, and the directive's value list.
fn directive_lists<'a>(
    patch: &'a Map<String, Value>,
    prefix: &'a str,
) -> impl Iterator<Item = Result<(&'a str, &'a [Value]), PatchError>> + 'a {
    patch.iter().filter_map(move |(key, value)| {
        let field = key.strip_prefix(prefix)?;
        Some(match value {
            Value::Array(items) => Ok((field, items.as_slice())),
            _ => Err(PatchError::BadRequest(format!("{key} must be a list, got {value}"))),
        })
    })
}

fn delete_from_primitive_lists(result: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), PatchError> {
    for entry in directive_lists(patch, DELETE_FROM_PRIMITIVE_LIST) {
        let (field, doomed) = entry?;
        if let Some(Value::Array(list)) = result.get_mut(field) {
            list.retain(|item| !doomed.contains(item));
        }
    }
    Ok(())
}

fn set_element_orders(result: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), PatchError> {
    for entry in directive_lists(patch, SET_ELEMENT_ORDER) {
        let (field, order) = entry?;
        let merge_key = match list_strategy(field) {
            ListStrategy::MergeByKey(key) => Some(key),
            _ => None,
        };
        if let Some(Value::Array(list)) = result.get_mut(field) {
            reorder(list, order, merge_key);
        }
    }
    Ok(())
}

/// Puts the elements named in `order` first, in that order; the others follow in their
/// current relative order. Lists of objects are identified by `merge_key`, lists of
/// scalars by value.
fn reorder(list: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let identity = |item: &Value| -> Option<Value> {
        match merge_key {
            Some(key) => item.get(key).cloned(),
            None => Some(item.clone()),
        }
    };
    let mut remaining: Vec<Option<Value>> = std::mem::take(list).into_iter().map(Some).collect();
    for wanted in order.iter().filter_map(identity) {
        let found = remaining
            .iter()
            .position(|slot| slot.as_ref().and_then(identity).as_ref() == Some(&wanted));
        if let Some(index) = found {
            list.extend(remaining[index].take());
        }
    }
    list.extend(remaining.into_iter().flatten());
}

fn retain_keys(result: &mut Map<String, Value>, patch: &Map<String, Value>) -> Result<(), PatchError> {
    let Some(retained) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let Some(retained) = retained.as_array() else {
        return Err(PatchError::BadRequest(format!(
            "{RETAIN_KEYS} must be a list, got {retained}"
        )));
    };
    result.retain(|key, _| retained.iter().any(|k| k.as_str() == Some(key)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80}]
                    },
                    {"name": "sidecar", "image": "sidecar:1"}
                ],
                "tolerations": [{"key": "a", "operator": "Exists"}]
            }
        })
    }

    fn patch(kind: PatchKind, target: &Value, body: Value) -> Result<Value, PatchError> {
        apply_patch(kind, target, body.to_string().as_bytes())
    }

    fn strategic(target: &Value, body: Value) -> Value {
        patch(PatchKind::StrategicMerge, target, body).expect("patch applies")
    }

    #[test]
    fn content_types_map_to_kinds_ignoring_parameters() {
        assert_eq!(
            PatchKind::from_content_type("application/json-patch+json"),
            Some(PatchKind::Json)
        );
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchKind::StrategicMerge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml"),
            Some(PatchKind::Apply)
        );
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }

    #[test]
    fn json_patch_applies_operations() {
        let body = json!([
            {"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"},
            {"op": "add", "path": "/metadata/labels/new", "value": "yes"},
            {"op": "remove", "path": "/metadata/labels/tier"}
        ]);
        let out = patch(PatchKind::Json, &pod(), body).unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], "app:2");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "yes"}));
    }

    #[test]
    fn json_patch_failed_test_op_is_invalid() {
        let body = json!([{"op": "test", "path": "/metadata/name", "value": "other"}]);
        let err = patch(PatchKind::Json, &pod(), body).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn json_patch_missing_path_is_invalid() {
        let body = json!([{"op": "remove", "path": "/metadata/annotations/x"}]);
        let err = patch(PatchKind::Json, &pod(), body).unwrap_err();
        assert!(matches!(err, PatchError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn json_patch_of_wrong_shape_is_bad_request() {
        let err = patch(PatchKind::Json, &pod(), json!({"op": "add"})).unwrap_err();
        assert!(matches!(err, PatchError::BadRequest(_)), "{err:?}");
    }

    #[test]
    fn bad_json_is_bad_request_for_every_kind() {
        for kind in [
            PatchKind::Json,
            PatchKind::Merge,
            PatchKind::StrategicMerge,
            PatchKind::Apply,
        ] {
            let err = apply_patch(kind, &pod(), b"{not json").unwrap_err();
            assert!(matches!(err, PatchError::BadRequest(_)), "{kind:?}: {err:?}");
        }
    }

    #[test]
    fn non_object_merge_patch_is_bad_request() {
        let err = patch(PatchKind::Merge, &pod(), json!([1, 2])).unwrap_err();
        assert!(matches!(err, PatchError::BadRequest(_)));
        let err = patch(PatchKind::StrategicMerge, &pod(), json!("x")).unwrap_err();
        assert!(matches!(err, PatchError::BadRequest(_)));
    }

    #[test]
    fn merge_patch_adds_and_removes_labels_and_replaces_lists() {
        let body = json!({
            "metadata": {"labels": {"tier": null, "env": "prod"}},
            "spec": {"containers": [{"name": "only", "image": "x"}]}
        });
        let out = patch(PatchKind::Merge, &pod(), body).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
    }

    #[test]
    fn strategic_merge_adds_and_removes_labels() {
        let out = strategic(&pod(), json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}));
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "env": "prod"}));
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn strategic_merge_changes_image_of_container_by_name() {
        let out = strategic(
            &pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "sidecar:2"}]}}),
        );
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "app:1");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(containers[1], json!({"name": "sidecar", "image": "sidecar:2"}));
    }

    #[test]
    fn strategic_merge_merges_env_by_name_and_appends_new_entries() {
        let body = json!({"spec": {"containers": [{
            "name": "app",
            "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]
        }]}});
        let out = strategic(&pod(), body);
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([
                {"name": "A", "value": "1"},
                {"name": "B", "value": "two"},
                {"name": "C", "value": "3"}
            ])
        );
    }

    #[test]
    fn strategic_merge_appends_new_container() {
        let body = json!({"spec": {"containers": [{"name": "extra", "image": "e:1"}]}});
        let out = strategic(&pod(), body);
        let names: Vec<_> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["app", "sidecar", "extra"]);
    }

    #[test]
    fn strategic_merge_patch_delete_removes_list_element() {
        let body = json!({"spec": {"containers": [
            {"name": "app", "env": [{"name": "A", "$patch": "delete"}]},
            {"name": "sidecar", "$patch": "delete"}
        ]}});
        let out = strategic(&pod(), body);
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["env"], json!([{"name": "B", "value": "2"}]));
    }

    #[test]
    fn strategic_merge_ports_merge_by_container_port() {
        let body = json!({"spec": {"containers": [{
            "name": "app",
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]
        }]}});
        let out = strategic(&pod(), body);
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "name": "http"}, {"containerPort": 443}])
        );
    }

    #[test]
    fn strategic_merge_replaces_lists_without_merge_key() {
        let body = json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
        let out = strategic(&pod(), body);
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b", "operator": "Exists"}]));
    }

    #[test]
    fn strategic_merge_patch_replace_in_map_replaces_it() {
        let body = json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}});
        let out = strategic(&pod(), body);
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    }

    #[test]
    fn strategic_merge_patch_replace_in_list_replaces_it() {
        let body = json!({"spec": {"containers": [
            {"$patch": "replace"},
            {"name": "solo", "image": "solo:1"}
        ]}});
        let out = strategic(&pod(), body);
        assert_eq!(out["spec"]["containers"], json!([{"name": "solo", "image": "solo:1"}]));
    }

    #[test]
    fn strategic_merge_honours_set_element_order() {
        let body = json!({"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "sidecar", "image": "sidecar:2"}]
        }});
        let out = strategic(&pod(), body);
        let containers = out["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers[0]["name"], "sidecar");
        assert_eq!(containers[0]["image"], "sidecar:2");
        assert_eq!(containers[1]["name"], "app");
        assert!(out["spec"].as_object().unwrap().keys().all(|k| !k.starts_with('$')));
    }

    #[test]
    fn set_element_order_keeps_unmentioned_elements_after() {
        let mut list = vec![json!({"name": "a"}), json!({"name": "b"}), json!({"name": "c"})];
        reorder(&mut list, &[json!({"name": "c"})], Some("name"));
        assert_eq!(
            list,
            vec![json!({"name": "c"}), json!({"name": "a"}), json!({"name": "b"})]
        );
    }

    #[test]
    fn strategic_merge_finalizers_merge_as_a_set_and_honour_delete_directive() {
        let target = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let out = strategic(
            &target,
            json!({"metadata": {
                "$setElementOrder/finalizers": ["c", "b"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "finalizers": ["c"]
            }}),
        );
        assert_eq!(out["metadata"], json!({"name": "x", "finalizers": ["c", "b"]}));
    }

    #[test]
    fn strategic_merge_retain_keys_drops_unlisted_keys() {
        let target = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let body = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = strategic(&target, body);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn strategic_merge_strips_directives_from_new_elements() {
        let target = json!({"metadata": {"name": "x"}});
        let body = json!({"spec": {"containers": [
            {"name": "new", "env": [{"name": "X", "value": "1", "$patch": "merge"}]}
        ]}});
        let out = strategic(&target, body);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "new", "env": [{"name": "X", "value": "1"}]}])
        );
    }

    #[test]
    fn strategic_merge_null_deletes_nested_key_and_map_delete_directive_removes_map() {
        let target = json!({"metadata": {"name": "x", "annotations": {"a": "1"}, "labels": {"l": "v"}}});
        let body = json!({"metadata": {"annotations": {"a": null}, "labels": {"$patch": "delete"}}});
        let out = strategic(&target, body);
        assert_eq!(out["metadata"], json!({"name": "x", "annotations": {}}));
    }

    #[test]
    fn unknown_patch_directive_is_bad_request() {
        let err = patch(
            PatchKind::StrategicMerge,
            &pod(),
            json!({"metadata": {"$patch": "explode"}}),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::BadRequest(_)));
    }

    #[test]
    fn apply_merges_like_strategic_merge() {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"applied": "true"}},
            "spec": {"containers": [{"name": "app", "image": "app:3"}]}
        });
        let out = patch(PatchKind::Apply, &pod(), body).unwrap();
        assert_eq!(out["metadata"]["labels"]["applied"], "true");
        assert_eq!(out["metadata"]["labels"]["app"], "web");
        assert_eq!(out["spec"]["containers"][0]["image"], "app:3");
        assert_eq!(out["spec"]["containers"][1]["name"], "sidecar");
    }

    #[test]
    fn target_is_left_untouched() {
        let target = pod();
        let _ = strategic(&target, json!({"metadata": {"labels": null}}));
        assert_eq!(target, pod());
    }
}
