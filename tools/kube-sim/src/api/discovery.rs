//! Discovery (`/version`, `/api`, `/apis`, `/api/v1`) and the minimal OpenAPI v3 that
//! lets `kubectl create -f` validate server-side instead of refusing to run.

use serde_json::{json, Value};

use crate::resources::ALL;

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-sim",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

pub fn api_groups() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}

pub fn core_v1() -> Value {
    let resources: Vec<Value> = ALL.iter().flat_map(|r| r.discovery_entries()).collect();
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})
}

pub fn openapi_v3_root() -> Value {
    json!({"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=KUBESIM1"}}})
}

/// kubectl only looks for a PATCH operation carrying the GVK and a `fieldValidation`
/// parameter; with it, kubectl leaves validation to the server.
pub fn openapi_v3_core() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ALL {
        let path = if r.namespaced {
            format!("/api/v1/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/api/v1/{}/{{name}}", r.plural)
        };
        paths.insert(
            path,
            json!({"patch": {
                "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": r.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                "responses": {}
            }}),
        );
    }
    json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths, "components": {"schemas": {}}})
}
