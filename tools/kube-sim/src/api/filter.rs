//! Which objects a list or watch request asks for: namespace plus label and field selectors.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::resources::Resource;
use crate::selector::{FieldSelector, LabelSelector};

pub struct Filter {
    pub resource: Resource,
    pub namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    pub fn from_query(resource: Resource, namespace: Option<&str>, query: &Query) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(resource.plural, query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Filter {
            resource,
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        })
    }

    /// Does this (stored, namespace-checked elsewhere) object match the selectors?
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object["metadata"].get("labels")) && self.fields.matches(self.resource.plural, object)
    }

    pub fn matches_namespace(&self, namespace: &str) -> bool {
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}
