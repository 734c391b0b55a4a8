//! The resource kinds kube-sim serves, with the facts discovery and the handlers need.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const PODS: Resource = Resource {
    plural: "pods",
    singular: "pod",
    kind: "Pod",
    namespaced: true,
    short_names: &["po"],
};
pub const SECRETS: Resource = Resource {
    plural: "secrets",
    singular: "secret",
    kind: "Secret",
    namespaced: true,
    short_names: &[],
};
pub const CONFIG_MAPS: Resource = Resource {
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
};
pub const EVENTS: Resource = Resource {
    plural: "events",
    singular: "event",
    kind: "Event",
    namespaced: true,
    short_names: &["ev"],
};
pub const SERVICE_ACCOUNTS: Resource = Resource {
    plural: "serviceaccounts",
    singular: "serviceaccount",
    kind: "ServiceAccount",
    namespaced: true,
    short_names: &["sa"],
};
pub const NAMESPACES: Resource = Resource {
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
};

pub const ALL: &[Resource] = &[PODS, SECRETS, CONFIG_MAPS, EVENTS, SERVICE_ACCOUNTS, NAMESPACES];

impl Resource {
    pub fn by_plural(plural: &str) -> Option<Resource> {
        ALL.iter().copied().find(|r| r.plural == plural)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The `APIResource` entries `/api/v1` lists for this kind and its subresources.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut entry = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ALL_VERBS,
        });
        if !self.short_names.is_empty() {
            entry["shortNames"] = json!(self.short_names);
        }
        if *self == PODS {
            entry["categories"] = json!(["all"]);
        }
        let mut entries = vec![entry];
        if *self == PODS {
            let sub = |name: &str, kind: &str, verbs: &[&str]| json!({"name": name, "singularName": "", "namespaced": true, "kind": kind, "verbs": verbs});
            entries.push(sub("pods/log", "Pod", &["get"]));
            entries.push(sub("pods/exec", "PodExecOptions", &["create", "get"]));
            entries.push(sub("pods/status", "Pod", &["get", "patch", "update"]));
        }
        if *self == NAMESPACES {
            entries.push(json!({"name": "namespaces/status", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["get", "patch", "update"]}));
        }
        entries
    }
}
