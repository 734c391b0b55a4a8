//! What the real API server refuses with `422 Invalid`, and how it words the refusal.
//!
//! kubectl and kube-rs show the apiserver's `Status` to users, and tests compare it, so
//! the checks here follow `k8s.io/apimachinery/pkg/util/validation`,
//! `k8s.io/apimachinery/pkg/api/validation` and `k8s.io/kubernetes/pkg/apis/core/validation`
//! for the kinds kube-sim stores (Pods, Secrets, ConfigMaps, Namespaces): the same
//! field paths, the same cause types and the same message texts. Only the rules that
//! matter for those kinds are implemented; see each function for what it covers.
//!
//! Every function takes the object as the API sends it (`serde_json::Value`, camelCase)
//! after the server's defaulting, and returns every error found, in the apiserver's
//! order. An empty list means the object is valid.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------
// Field errors
// ---------------------------------------------------------------------------

/// One cause of an `Invalid` status: `reason` is the cause type, `message` the text
/// without the field (`Required value`), `field` the JSON path (`spec.containers[0].image`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

const REQUIRED: &str = "FieldValueRequired";
const INVALID: &str = "FieldValueInvalid";
const DUPLICATE: &str = "FieldValueDuplicate";
const NOT_FOUND: &str = "FieldValueNotFound";
const NOT_SUPPORTED: &str = "FieldValueNotSupported";
const FORBIDDEN: &str = "FieldValueForbidden";
const TOO_LONG: &str = "FieldValueTooLong";

/// The offending value an error quotes, printed the way Go's `field.Error` prints it.
#[derive(Debug, Clone)]
enum BadValue {
    /// Strings are printed with Go's `%q`.
    Str(String),
    /// Integers are printed bare.
    Int(i64),
    /// Anything else is printed as its JSON encoding.
    Json(String),
}

impl BadValue {
    fn render(&self) -> String {
        match self {
            BadValue::Str(s) => go_quote(s),
            BadValue::Int(n) => n.to_string(),
            BadValue::Json(json) => json.clone(),
        }
    }
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_string())
    }
}

impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        BadValue::Str(s.clone())
    }
}

impl From<i64> for BadValue {
    fn from(n: i64) -> Self {
        BadValue::Int(n)
    }
}

impl FieldError {
    /// `field: message`, the form the apiserver joins into the status message.
    pub fn to_string_for_message(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }

    fn new(reason: &'static str, field: &str, message: String) -> Self {
        FieldError {
            reason,
            message,
            field: field.to_string(),
        }
    }

    fn required(field: &str, detail: &str) -> Self {
        Self::new(REQUIRED, field, with_detail("Required value".into(), detail))
    }

    fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(FORBIDDEN, field, with_detail("Forbidden".into(), detail))
    }

    fn too_long(field: &str, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max_bytes} {unit}");
        Self::new(TOO_LONG, field, with_detail("Too long".into(), &detail))
    }

    fn invalid(field: &str, value: impl Into<BadValue>, detail: &str) -> Self {
        let head = format!("Invalid value: {}", value.into().render());
        Self::new(INVALID, field, with_detail(head, detail))
    }

    fn duplicate(field: &str, value: impl Into<BadValue>) -> Self {
        let message = format!("Duplicate value: {}", value.into().render());
        Self::new(DUPLICATE, field, message)
    }

    fn not_found(field: &str, value: impl Into<BadValue>) -> Self {
        let message = format!("Not found: {}", value.into().render());
        Self::new(NOT_FOUND, field, message)
    }

    /// The supported values are listed sorted, as the apiserver's declarative
    /// validation lists enum values.
    fn not_supported(field: &str, value: impl Into<BadValue>, supported: &[&str]) -> Self {
        let mut supported = supported.to_vec();
        supported.sort_unstable();
        let quoted: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
        let head = format!("Unsupported value: {}", value.into().render());
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(NOT_SUPPORTED, field, with_detail(head, &detail))
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// Go's `strconv.Quote`, enough of it for names and paths.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Status message the apiserver builds: `Pod "x" is invalid: <one error>` or
/// `Pod "x" is invalid: [<e1>, <e2>]`. Repeated errors are listed once, as the
/// apiserver's error aggregate does.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut unique: Vec<String> = Vec::new();
    for error in errors {
        let text = error.to_string_for_message();
        if !unique.contains(&text) {
            unique.push(text);
        }
    }
    let head = format!("{kind} {} is invalid", go_quote(name));
    match unique.len() {
        0 => head,
        1 => format!("{head}: {}", unique[0]),
        _ => format!("{head}: [{}]", unique.join(", ")),
    }
}

// ---------------------------------------------------------------------------
// Name and format checks (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------

// Each check returns the apiserver's messages, empty when the value is fine; callers
// turn each message into an Invalid error on their field.

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const PORT_NAME_MAX: usize = 15;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";

fn anchored(format: &str) -> Regex {
    Regex::new(&format!("^(?:{format})$")).expect("validation regexes are valid")
}

static DNS1123_LABEL_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static QUALIFIED_NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE_RE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));
static CONFIG_MAP_KEY_RE: LazyLock<Regex> = LazyLock::new(|| anchored(CONFIG_MAP_KEY_FMT));
static ENV_VAR_NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(ENV_VAR_NAME_FMT));

/// Go's `RegexError`: the message, examples and the regex.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{format}')");
    }
    // The doubled space before "or" is the apiserver's.
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !DNS1123_LABEL_RE.is_match(value) {
        if DNS1123_SUBDOMAIN_RE.is_match(value) {
            // A valid subdomain of acceptable length: the dots are the problem.
            errs.push("must not contain dots".to_string());
        } else {
            let examples = ["my-name", "123-abc"];
            errs.push(regex_error(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, &examples));
        }
    }
    errs
}

fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !DNS1123_SUBDOMAIN_RE.is_match(value) {
        let examples = ["example.com"];
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &examples));
    }
    errs
}

/// A label key, annotation key or finalizer: `[prefix/]name`.
fn is_qualified_name(value: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = value.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                let prefixed = is_dns1123_subdomain(prefix);
                errs.extend(prefixed.into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            let base = regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples);
            return vec![format!(
                "a qualified name {base} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !QUALIFIED_NAME_RE.is_match(name) {
        let base = regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &examples);
        errs.push(format!("name part {base}"));
    }
    errs
}

fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !LABEL_VALUE_RE.is_match(value) {
        let examples = ["MyValue", "my_value", "12345"];
        errs.push(regex_error(LABEL_VALUE_ERR, LABEL_VALUE_FMT, &examples));
    }
    errs
}

/// Keys of Secret and ConfigMap data: they become file names in volumes, hence the
/// ban on `.` and `..`.
fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !CONFIG_MAP_KEY_RE.is_match(value) {
        let examples = ["key.name", "KEY_NAME", "key-name"];
        errs.push(regex_error(CONFIG_MAP_KEY_ERR, CONFIG_MAP_KEY_FMT, &examples));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if !ENV_VAR_NAME_RE.is_match(value) {
        let examples = ["my.env-name", "MY_ENV.NAME", "MyEnvName1"];
        errs.push(regex_error(ENV_VAR_NAME_ERR, ENV_VAR_NAME_FMT, &examples));
    }
    errs.extend(has_chdir_prefix(value));
    errs
}

fn has_chdir_prefix(value: &str) -> Option<String> {
    match value {
        "." => Some("must not be '.'".to_string()),
        ".." => Some("must not be '..'".to_string()),
        v if v.starts_with("..") => Some("must not start with '..'".to_string()),
        _ => None,
    }
}

fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > PORT_NAME_MAX {
        errs.push(max_len_error(PORT_NAME_MAX));
    }
    let charset_ok = !port.is_empty()
        && port
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !charset_ok {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

fn is_valid_ip(value: &str) -> bool {
    value.parse::<std::net::IpAddr>().is_ok()
}

/// A `generateName` is validated as a name with its trailing dash made harmless,
/// since the random suffix follows it.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(stem) if !stem.is_empty() => format!("{stem}a"),
        _ => name.to_string(),
    }
}

fn invalid_each(field: &str, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages.iter().map(|m| FieldError::invalid(field, value, m)).collect()
}

fn validate_dns1123_label(value: &str, field: &str) -> Vec<FieldError> {
    invalid_each(field, value, is_dns1123_label(value))
}

fn validate_dns1123_subdomain(value: &str, field: &str) -> Vec<FieldError> {
    invalid_each(field, value, is_dns1123_subdomain(value))
}

// ---------------------------------------------------------------------------
// JSON access
// ---------------------------------------------------------------------------

static NULL: Value = Value::Null;

fn child<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&NULL)
}

/// A string field, "" when absent (Go's zero value).
fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn int_at(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64)
}

fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn object_at<'a>(value: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    value.get(key).and_then(Value::as_object)
}

fn is_set(value: &Value, key: &str) -> bool {
    value.get(key).is_some_and(|v| !v.is_null())
}

/// Map entries in key order: Go iterates maps randomly, sorting makes ours stable.
fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

// ---------------------------------------------------------------------------
// Object metadata
// ---------------------------------------------------------------------------

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

type NameCheck = fn(&str) -> Vec<String>;

/// Validates `metadata` of a namespaced or cluster-scoped object whose name must be a
/// DNS-1123 subdomain: name (or generateName), namespace, labels, annotations,
/// finalizers and owner references. A missing namespace is accepted: the server fills
/// it in from the request path.
pub fn validate_object_meta(meta: &serde_json::Value, namespaced: bool) -> Vec<FieldError> {
    object_meta_errors(meta, namespaced, is_dns1123_subdomain)
}

fn object_meta_errors(meta: &Value, namespaced: bool, name_check: NameCheck) -> Vec<FieldError> {
    let mut errs = name_errors(meta, name_check);
    errs.extend(namespace_errors(meta, namespaced));
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(meta.get("annotations")));
    errs.extend(owner_reference_errors(array_at(meta, "ownerReferences")));
    errs.extend(finalizer_errors(array_at(meta, "finalizers"), "metadata.finalizers"));
    errs
}

fn name_errors(meta: &Value, name_check: NameCheck) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = str_at(meta, "generateName");
    if !generate_name.is_empty() {
        let messages = name_check(&mask_trailing_dash(generate_name));
        errs.extend(invalid_each("metadata.generateName", generate_name, messages));
    }
    let name = str_at(meta, "name");
    if !name.is_empty() {
        errs.extend(invalid_each("metadata.name", name, name_check(name)));
    } else if generate_name.is_empty() {
        // With a generateName the server makes up the name before validating.
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    errs
}

fn namespace_errors(meta: &Value, namespaced: bool) -> Vec<FieldError> {
    let namespace = str_at(meta, "namespace");
    if namespace.is_empty() {
        return Vec::new();
    }
    if !namespaced {
        return vec![FieldError::forbidden("metadata.namespace", "not allowed on this type")];
    }
    validate_dns1123_label(namespace, "metadata.namespace")
}

/// Labels (and node selectors): qualified-name keys, label values. The errors name the
/// whole map, not the key, as the apiserver's do.
fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<FieldError> {
    let Some(labels) = labels.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    for (key, value) in sorted_entries(labels) {
        errs.extend(invalid_each(field, key, is_qualified_name(key)));
        match value {
            Value::String(v) => errs.extend(invalid_each(field, v, is_valid_label_value(v))),
            Value::Null => {}
            other => errs.push(FieldError::invalid(
                field,
                BadValue::Json(json_text(other)),
                "must be a string",
            )),
        }
    }
    errs
}

fn validate_annotations(annotations: Option<&Value>) -> Vec<FieldError> {
    const FIELD: &str = "metadata.annotations";
    let Some(annotations) = annotations.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let mut total = 0;
    for (key, value) in sorted_entries(annotations) {
        // Annotation keys are qualified names in any letter case.
        errs.extend(invalid_each(FIELD, key, is_qualified_name(&key.to_lowercase())));
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(FIELD, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn finalizer_errors(finalizers: &[Value], field: &str) -> Vec<FieldError> {
    finalizers
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|f| invalid_each(field, f, is_qualified_name(f)))
        .collect()
}

fn owner_reference_errors(references: &[Value]) -> Vec<FieldError> {
    // The apiserver reports these on the list path, without an index.
    const FIELD: &str = "metadata.ownerReferences";
    let mut errs = Vec::new();
    for reference in references {
        let api_version = str_at(reference, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            let field = format!("{FIELD}.apiVersion");
            errs.push(FieldError::invalid(&field, api_version, "version must not be empty"));
        }
        for key in ["kind", "name", "uid"] {
            let value = str_at(reference, key);
            if value.is_empty() {
                let field = format!("{FIELD}.{key}");
                errs.push(FieldError::invalid(&field, value, "must not be empty"));
            }
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------

/// Validates a Pod: its metadata and its spec (volumes, containers of every kind,
/// restart and DNS policy, node selector, deadlines, tolerations, host aliases).
pub fn validate_pod(pod: &serde_json::Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(child(pod, "metadata"), true);
    errs.extend(validate_pod_spec(child(pod, "spec")));
    errs
}

fn validate_pod_spec(spec: &Value) -> Vec<FieldError> {
    let (volumes, mut errs) = validate_volumes(array_at(spec, "volumes"));
    errs.extend(validate_containers(spec, &volumes));
    errs.extend(validate_init_containers(spec, &volumes));
    errs.extend(validate_ephemeral_containers(spec, &volumes));
    errs.extend(validate_enum(
        spec,
        "restartPolicy",
        "spec.restartPolicy",
        &["Always", "OnFailure", "Never"],
    ));
    errs.extend(validate_enum(
        spec,
        "dnsPolicy",
        "spec.dnsPolicy",
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(spec.get("nodeSelector"), "spec.nodeSelector"));
    errs.extend(validate_dns_config(spec));
    errs.extend(validate_pod_names(spec));
    errs.extend(validate_active_deadline(spec));
    errs.extend(validate_grace_period(spec));
    errs.extend(validate_tolerations(array_at(spec, "tolerations"), "spec.tolerations"));
    errs.extend(validate_host_aliases(array_at(spec, "hostAliases")));
    errs
}

/// An enumerated string field. Absent or empty is accepted: the server defaults it.
fn validate_enum(object: &Value, key: &str, field: &str, supported: &[&str]) -> Vec<FieldError> {
    let value = str_at(object, key);
    if value.is_empty() || supported.contains(&value) {
        return Vec::new();
    }
    vec![FieldError::not_supported(field, value, supported)]
}

fn validate_pod_names(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let service_account = str_at(spec, "serviceAccountName");
    if !service_account.is_empty() {
        errs.extend(validate_dns1123_subdomain(service_account, "spec.serviceAccountName"));
    }
    for key in ["hostname", "subdomain"] {
        let value = str_at(spec, key);
        if !value.is_empty() {
            errs.extend(validate_dns1123_label(value, &format!("spec.{key}")));
        }
    }
    errs
}

fn validate_active_deadline(spec: &Value) -> Vec<FieldError> {
    match int_at(spec, "activeDeadlineSeconds") {
        Some(seconds) if !(1..=i64::from(i32::MAX)).contains(&seconds) => {
            vec![FieldError::invalid(
                "spec.activeDeadlineSeconds",
                seconds,
                &format!("must be between 1 and {}, inclusive", i32::MAX),
            )]
        }
        _ => Vec::new(),
    }
}

fn validate_grace_period(spec: &Value) -> Vec<FieldError> {
    match int_at(spec, "terminationGracePeriodSeconds") {
        Some(seconds) if seconds < 0 => vec![FieldError::invalid(
            "spec.terminationGracePeriodSeconds",
            seconds,
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

const MAX_DNS_NAMESERVERS: usize = 3;

fn validate_dns_config(spec: &Value) -> Vec<FieldError> {
    let config = spec.get("dnsConfig").filter(|c| !c.is_null());
    let nameservers = config.map_or(&[][..], |c| array_at(c, "nameservers"));
    if str_at(spec, "dnsPolicy") == "None" {
        if config.is_none() {
            return vec![FieldError::required(
                "spec.dnsConfig",
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        }
        if nameservers.is_empty() {
            return vec![FieldError::required(
                "spec.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let mut errs = Vec::new();
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            "spec.dnsConfig.nameservers",
            BadValue::Json(json_text(&Value::Array(nameservers.to_vec()))),
            &format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, server) in nameservers.iter().enumerate() {
        let field = format!("spec.dnsConfig.nameservers[{i}]");
        errs.extend(ip_errors(server.as_str().unwrap_or(""), &field));
    }
    errs
}

fn ip_errors(value: &str, field: &str) -> Vec<FieldError> {
    if is_valid_ip(value) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        field,
        value,
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    )]
}

fn validate_host_aliases(aliases: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, alias) in aliases.iter().enumerate() {
        let path = format!("spec.hostAliases[{i}]");
        errs.extend(ip_errors(str_at(alias, "ip"), &format!("{path}.ip")));
        for (j, hostname) in array_at(alias, "hostnames").iter().enumerate() {
            let field = format!("{path}.hostnames[{j}]");
            errs.extend(validate_dns1123_subdomain(hostname.as_str().unwrap_or(""), &field));
        }
    }
    errs
}

fn validate_tolerations(tolerations: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, toleration) in tolerations.iter().enumerate() {
        errs.extend(toleration_errors(toleration, &format!("{path}[{i}]")));
    }
    errs
}

fn toleration_errors(toleration: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let key = str_at(toleration, "key");
    let operator = str_at(toleration, "operator");
    let value = str_at(toleration, "value");
    let effect = str_at(toleration, "effect");
    let operator_field = format!("{path}.operator");
    let effect_field = format!("{path}.effect");
    if !key.is_empty() {
        errs.extend(invalid_each(&format!("{path}.key"), key, is_qualified_name(key)));
    }
    if key.is_empty() && operator != "Exists" {
        errs.push(FieldError::invalid(
            &operator_field,
            operator,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if is_set(toleration, "tolerationSeconds") && effect != "NoExecute" {
        errs.push(FieldError::invalid(
            &effect_field,
            effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    match operator {
        "" | "Equal" => {
            let messages = is_valid_label_value(value);
            if !messages.is_empty() {
                errs.push(FieldError::invalid(&operator_field, value, &messages.join(";")));
            }
        }
        "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
            &operator_field,
            BadValue::Json(go_toleration_json(toleration)),
            "value must be empty when `operator` is 'Exists'",
        )),
        "Exists" => {}
        other => errs.push(FieldError::not_supported(&operator_field, other, &["Equal", "Exists"])),
    }
    if !effect.is_empty() {
        errs.extend(validate_enum(
            toleration,
            "effect",
            &effect_field,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
    errs
}

/// The apiserver quotes the whole internal Toleration struct, which has no JSON tags,
/// so its keys are the Go field names.
fn go_toleration_json(toleration: &Value) -> String {
    let seconds = toleration.get("tolerationSeconds").cloned().unwrap_or(Value::Null);
    let mut fields = Map::new();
    for (go_name, key) in [
        ("Key", "key"),
        ("Operator", "operator"),
        ("Value", "value"),
        ("Effect", "effect"),
    ] {
        fields.insert(go_name.into(), Value::String(str_at(toleration, key).into()));
    }
    fields.insert("TolerationSeconds".into(), seconds);
    // Keep Go's field order whatever serde_json's map ordering is.
    let ordered: Vec<String> = ["Key", "Operator", "Value", "Effect", "TolerationSeconds"]
        .iter()
        .map(|k| format!("{}:{}", json_text(&Value::String((*k).into())), fields[*k]))
        .collect();
    format!("{{{}}}", ordered.join(","))
}

// ----- volumes -------------------------------------------------------------

/// Every volume source the API knows, in the order the apiserver checks them. kube-sim
/// only inspects a few, but any of them counts as "a volume type".
const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Validates `spec.volumes` and returns the names of the valid volumes: mounts of an
/// invalid volume are reported as not found, as the apiserver does.
fn validate_volumes(volumes: &[Value]) -> (HashSet<String>, Vec<FieldError>) {
    let mut names = HashSet::new();
    let mut errs = Vec::new();
    for (i, volume) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        let name_field = format!("{path}.name");
        let name = str_at(volume, "name");
        let mut volume_errs = validate_volume_source(volume, &path);
        if name.is_empty() {
            volume_errs.push(FieldError::required(&name_field, ""));
        } else {
            volume_errs.extend(validate_dns1123_label(name, &name_field));
        }
        if names.contains(name) {
            volume_errs.push(FieldError::duplicate(&name_field, name));
        }
        if volume_errs.is_empty() {
            names.insert(name.to_string());
        }
        errs.extend(volume_errs);
    }
    (names, errs)
}

fn validate_volume_source(volume: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut sources = 0;
    for source in VOLUME_SOURCES {
        let Some(config) = volume.get(*source).filter(|v| !v.is_null()) else {
            continue;
        };
        let source_path = format!("{path}.{source}");
        if sources > 0 {
            errs.push(FieldError::forbidden(
                &source_path,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        sources += 1;
        errs.extend(source_errors(source, config, &source_path));
    }
    if sources == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn source_errors(source: &str, config: &Value, path: &str) -> Vec<FieldError> {
    match source {
        "hostPath" => host_path_errors(config, path),
        "secret" => projection_errors(config, "secretName", path),
        "configMap" => projection_errors(config, "name", path),
        "persistentVolumeClaim" => required_string(config, "claimName", path),
        "downwardAPI" => downward_api_errors(config, path),
        "csi" => required_string(config, "driver", path),
        _ => Vec::new(),
    }
}

fn required_string(config: &Value, key: &str, path: &str) -> Vec<FieldError> {
    if str_at(config, key).is_empty() {
        vec![FieldError::required(&format!("{path}.{key}"), "")]
    } else {
        Vec::new()
    }
}

fn host_path_errors(config: &Value, path: &str) -> Vec<FieldError> {
    let host_path = str_at(config, "path");
    let path_field = format!("{path}.path");
    if host_path.is_empty() {
        return vec![FieldError::required(&path_field, "")];
    }
    let mut errs = no_backsteps(host_path, &path_field);
    if let Some(kind) = config.get("type").and_then(Value::as_str) {
        let supported = [
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ];
        if !supported.contains(&kind) {
            errs.push(FieldError::not_supported(&format!("{path}.type"), kind, &supported));
        }
    }
    errs
}

/// Secret and ConfigMap volumes: the object's name, the default mode and the items.
fn projection_errors(config: &Value, name_key: &str, path: &str) -> Vec<FieldError> {
    let mut errs = required_string(config, name_key, path);
    errs.extend(mode_errors(config, "defaultMode", path));
    for (i, item) in array_at(config, "items").iter().enumerate() {
        errs.extend(key_to_path_errors(item, &format!("{path}.items[{i}]")));
    }
    errs
}

fn mode_errors(config: &Value, key: &str, path: &str) -> Vec<FieldError> {
    match int_at(config, key) {
        Some(mode) if !(0..=0o777).contains(&mode) => {
            vec![FieldError::invalid(&format!("{path}.{key}"), mode, FILE_MODE_ERROR)]
        }
        _ => Vec::new(),
    }
}

fn key_to_path_errors(item: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = required_string(item, "key", path);
    errs.extend(required_string(item, "path", path));
    errs.extend(local_non_reserved_path(str_at(item, "path"), &format!("{path}.path")));
    errs.extend(mode_errors(item, "mode", path));
    errs
}

fn downward_api_errors(config: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = mode_errors(config, "defaultMode", path);
    // The apiserver reports item errors on the volume source's path, without an index.
    for item in array_at(config, "items") {
        errs.extend(required_string(item, "path", path));
        errs.extend(local_non_reserved_path(str_at(item, "path"), &format!("{path}.path")));
        match (is_set(item, "fieldRef"), is_set(item, "resourceFieldRef")) {
            (true, true) => errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            )),
            (false, false) => errs.push(FieldError::required(
                path,
                "one of fieldRef and resourceFieldRef is required",
            )),
            _ => {}
        }
    }
    errs
}

/// A path inside a volume: relative and without `..` elements.
fn local_descending_path(target: &str, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(field, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, field));
    errs
}

fn local_non_reserved_path(target: &str, field: &str) -> Vec<FieldError> {
    let mut errs = local_descending_path(target, field);
    // `..data` and friends are reserved by the atomic writer; `../` was caught above.
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(field, target, "must not start with '..'"));
    }
    errs
}

fn no_backsteps(target: &str, field: &str) -> Vec<FieldError> {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(field, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

// ----- containers ----------------------------------------------------------

fn container_names(containers: &[Value]) -> impl Iterator<Item = &str> {
    containers.iter().map(|c| str_at(c, "name"))
}

fn validate_containers(spec: &Value, volumes: &HashSet<String>) -> Vec<FieldError> {
    let containers = array_at(spec, "containers");
    if containers.is_empty() {
        return vec![FieldError::required("spec.containers", "")];
    }
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, container) in containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        errs.extend(validate_container_common(container, &path, volumes));
        let name = str_at(container, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&format!("{path}.name"), name));
        }
    }
    errs
}

fn validate_init_containers(spec: &Value, volumes: &HashSet<String>) -> Vec<FieldError> {
    let mut names: HashSet<&str> = container_names(array_at(spec, "containers")).collect();
    let mut errs = Vec::new();
    for (i, container) in array_at(spec, "initContainers").iter().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        errs.extend(validate_container_common(container, &path, volumes));
        // Init containers may only opt into being sidecars.
        errs.extend(validate_enum(
            container,
            "restartPolicy",
            &format!("{path}.restartPolicy"),
            &["Always"],
        ));
        let name = str_at(container, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&format!("{path}.name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
    }
    errs
}

fn validate_ephemeral_containers(spec: &Value, volumes: &HashSet<String>) -> Vec<FieldError> {
    let others: HashSet<&str> = container_names(array_at(spec, "containers"))
        .chain(container_names(array_at(spec, "initContainers")))
        .collect();
    let mut names = HashSet::new();
    let mut errs = Vec::new();
    for (i, container) in array_at(spec, "ephemeralContainers").iter().enumerate() {
        let path = format!("spec.ephemeralContainers[{i}]");
        errs.extend(validate_container_common(container, &path, volumes));
        let name = str_at(container, "name");
        let name_field = format!("{path}.name");
        if others.contains(name) {
            errs.push(FieldError::invalid(
                &name_field,
                name,
                "must be unique among all containers, init containers and ephemeral containers",
            ));
        } else if !names.insert(name) {
            errs.push(FieldError::duplicate(&name_field, name));
        }
    }
    errs
}

/// The checks every kind of container gets.
fn validate_container_common(container: &Value, path: &str, volumes: &HashSet<String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_at(container, "name");
    let name_field = format!("{path}.name");
    if name.is_empty() {
        errs.push(FieldError::required(&name_field, ""));
    } else {
        errs.extend(validate_dns1123_label(name, &name_field));
    }
    if str_at(container, "image").is_empty() {
        errs.push(FieldError::required(&format!("{path}.image"), ""));
    }
    errs.extend(validate_enum(
        container,
        "terminationMessagePolicy",
        &format!("{path}.terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    ));
    errs.extend(validate_ports(array_at(container, "ports"), &format!("{path}.ports")));
    errs.extend(validate_env(array_at(container, "env"), &format!("{path}.env")));
    errs.extend(validate_env_from(
        array_at(container, "envFrom"),
        &format!("{path}.envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        array_at(container, "volumeMounts"),
        &format!("{path}.volumeMounts"),
        volumes,
    ));
    errs.extend(validate_enum(
        container,
        "imagePullPolicy",
        &format!("{path}.imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    errs.extend(validate_resources(
        child(container, "resources"),
        &format!("{path}.resources"),
    ));
    errs
}

fn port_range_errors(port: i64, field: &str) -> Vec<FieldError> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            port,
            "must be between 1 and 65535, inclusive",
        )]
    }
}

fn validate_ports(ports: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let port_path = format!("{path}[{i}]");
        let name = str_at(port, "name");
        if !name.is_empty() {
            let name_field = format!("{port_path}.name");
            let messages = is_valid_port_name(name);
            if !messages.is_empty() {
                errs.extend(invalid_each(&name_field, name, messages));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&name_field, name));
            }
        }
        let container_port_field = format!("{port_path}.containerPort");
        match int_at(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(&container_port_field, "")),
            n => errs.extend(port_range_errors(n, &container_port_field)),
        }
        match int_at(port, "hostPort").unwrap_or(0) {
            0 => {}
            n => errs.extend(port_range_errors(n, &format!("{port_path}.hostPort"))),
        }
        errs.extend(validate_enum(
            port,
            "protocol",
            &format!("{port_path}.protocol"),
            &["TCP", "UDP", "SCTP"],
        ));
    }
    errs
}

fn validate_env(env: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, var) in env.iter().enumerate() {
        let var_path = format!("{path}[{i}]");
        let name = str_at(var, "name");
        let name_field = format!("{var_path}.name");
        if name.is_empty() {
            errs.push(FieldError::required(&name_field, ""));
        }
        // An empty name also fails the format check; the apiserver reports both.
        errs.extend(invalid_each(&name_field, name, is_env_var_name(name)));
        if is_set(var, "valueFrom") {
            errs.extend(value_from_errors(var, &format!("{var_path}.valueFrom")));
        }
    }
    errs
}

fn value_from_errors(var: &Value, path: &str) -> Vec<FieldError> {
    let value_from = child(var, "valueFrom");
    let mut errs = Vec::new();
    let mut sources = 0;
    if let Some(selector) = value_from.get("fieldRef").filter(|v| !v.is_null()) {
        sources += 1;
        errs.extend(field_ref_errors(selector, &format!("{path}.fieldRef")));
    }
    if let Some(selector) = value_from.get("resourceFieldRef").filter(|v| !v.is_null()) {
        sources += 1;
        errs.extend(resource_field_ref_errors(selector, &format!("{path}.resourceFieldRef")));
    }
    for key in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(selector) = value_from.get(key).filter(|v| !v.is_null()) {
            sources += 1;
            errs.extend(key_selector_errors(selector, &format!("{path}.{key}")));
        }
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !str_at(var, "value").is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// Pod fields the downward API can put in an environment variable.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Pod fields the downward API knows at all (`ConvertDownwardAPIFieldLabel`).
const KNOWN_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn field_ref_errors(selector: &Value, path: &str) -> Vec<FieldError> {
    let field_path = str_at(selector, "fieldPath");
    let field = format!("{path}.fieldPath");
    if field_path.is_empty() {
        return vec![FieldError::required(&field, "")];
    }
    // `apiVersion` is defaulted to v1 by the server.
    let api_version = match str_at(selector, "apiVersion") {
        "" => "v1",
        v => v,
    };
    if api_version != "v1" {
        let detail = format!("error converting fieldPath: unsupported pod version: {api_version}");
        return vec![FieldError::invalid(&field, field_path, &detail)];
    }
    if let Some((base, subscript)) = split_subscript(field_path) {
        return match base {
            "metadata.annotations" => invalid_each(
                path,
                &subscript.to_lowercase(),
                is_qualified_name(&subscript.to_lowercase()),
            ),
            "metadata.labels" => invalid_each(path, subscript, is_qualified_name(subscript)),
            _ => {
                let detail =
                    format!("error converting fieldPath: field label does not support subscript: {field_path}");
                vec![FieldError::invalid(&field, field_path, &detail)]
            }
        };
    }
    if !KNOWN_FIELD_PATHS.contains(&field_path) {
        let detail = format!("error converting fieldPath: field label not supported: {field_path}");
        return vec![FieldError::invalid(&field, field_path, &detail)];
    }
    if !ENV_FIELD_PATHS.contains(&field_path) {
        return vec![FieldError::not_supported(&field, field_path, ENV_FIELD_PATHS)];
    }
    Vec::new()
}

/// `metadata.labels['key']` → (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let open = path.find("['")?;
    let inner = path[open + 2..].strip_suffix("']")?;
    Some((&path[..open], inner))
}

fn resource_field_ref_errors(selector: &Value, path: &str) -> Vec<FieldError> {
    const SUPPORTED: &[&str] = &[
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
    ];
    let resource = str_at(selector, "resource");
    let field = format!("{path}.resource");
    if resource.is_empty() {
        return vec![FieldError::required(&field, "")];
    }
    let hugepages = resource.starts_with("limits.hugepages-") || resource.starts_with("requests.hugepages-");
    if SUPPORTED.contains(&resource) || hugepages {
        return Vec::new();
    }
    vec![FieldError::not_supported(&field, resource, SUPPORTED)]
}

/// `configMapKeyRef` / `secretKeyRef`.
fn key_selector_errors(selector: &Value, path: &str) -> Vec<FieldError> {
    let name = str_at(selector, "name");
    let mut errs = invalid_each(&format!("{path}.name"), name, is_dns1123_subdomain(name));
    let key = str_at(selector, "key");
    let key_field = format!("{path}.key");
    if key.is_empty() {
        errs.push(FieldError::required(&key_field, ""));
    } else {
        errs.extend(invalid_each(&key_field, key, is_config_map_key(key)));
    }
    errs
}

fn validate_env_from(sources: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let source_path = format!("{path}[{i}]");
        let prefix = str_at(source, "prefix");
        if !prefix.is_empty() {
            errs.extend(invalid_each(
                &format!("{source_path}.prefix"),
                prefix,
                is_env_var_name(prefix),
            ));
        }
        let mut count = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(reference) = source.get(key).filter(|v| !v.is_null()) {
                count += 1;
                errs.extend(env_source_name_errors(reference, &format!("{source_path}.{key}.name")));
            }
        }
        // The apiserver reports these on the list path, without an index.
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn env_source_name_errors(reference: &Value, field: &str) -> Vec<FieldError> {
    let name = str_at(reference, "name");
    if name.is_empty() {
        return vec![FieldError::required(field, "")];
    }
    invalid_each(field, name, is_dns1123_subdomain(&mask_trailing_dash(name)))
}

fn validate_volume_mounts(mounts: &[Value], path: &str, volumes: &HashSet<String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut mount_paths = HashSet::new();
    for (i, mount) in mounts.iter().enumerate() {
        let mount_path_prefix = format!("{path}[{i}]");
        let name = str_at(mount, "name");
        let name_field = format!("{mount_path_prefix}.name");
        if name.is_empty() {
            errs.push(FieldError::required(&name_field, ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::not_found(&name_field, name));
        }
        let mount_path = str_at(mount, "mountPath");
        let mount_path_field = format!("{mount_path_prefix}.mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(&mount_path_field, ""));
        }
        if !mount_paths.insert(mount_path) {
            errs.push(FieldError::invalid(&mount_path_field, mount_path, "must be unique"));
        }
        errs.extend(sub_path_errors(mount, path, &mount_path_prefix));
    }
    errs
}

fn sub_path_errors(mount: &Value, list_path: &str, mount_path: &str) -> Vec<FieldError> {
    // The apiserver names these on the list path (`volumeMounts.subPath`), not the
    // element; kept for identical messages.
    let mut errs = Vec::new();
    let sub_path = str_at(mount, "subPath");
    if !sub_path.is_empty() {
        errs.extend(local_descending_path(sub_path, &format!("{list_path}.subPath")));
    }
    let expr = str_at(mount, "subPathExpr");
    if !expr.is_empty() {
        if !sub_path.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{mount_path}.subPathExpr"),
                expr,
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        errs.extend(local_descending_path(expr, &format!("{list_path}.subPathExpr")));
    }
    errs
}

// ----- resources -----------------------------------------------------------

/// One entry of `limits` or `requests`: its text and, if it parsed, its value.
struct ResourceAmount<'a> {
    name: &'a str,
    text: String,
    value: Option<f64>,
}

fn validate_resources(resources: &Value, path: &str) -> Vec<FieldError> {
    let limits_path = format!("{path}.limits");
    let requests_path = format!("{path}.requests");
    let mut errs = Vec::new();
    let limits = resource_amounts(resources.get("limits"), &limits_path, &mut errs);
    let requests = resource_amounts(resources.get("requests"), &requests_path, &mut errs);
    for request in &requests {
        let limit = limits.iter().find(|l| l.name == request.name);
        errs.extend(request_vs_limit(request, limit, &limits_path, &requests_path));
    }
    errs
}

fn resource_amounts<'a>(list: Option<&'a Value>, path: &str, errs: &mut Vec<FieldError>) -> Vec<ResourceAmount<'a>> {
    let Some(list) = list.and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut amounts = Vec::new();
    for (name, quantity) in sorted_entries(list) {
        let field = format!("{path}[{name}]");
        errs.extend(resource_name_errors(name, &field));
        let text = quantity_text(quantity);
        let value = match parse_quantity_detailed(&text) {
            Ok(value) => {
                errs.extend(quantity_value_errors(name, &text, value, &field));
                Some(value)
            }
            Err(e) => {
                errs.push(FieldError::invalid(&field, &text, e.message()));
                None
            }
        };
        amounts.push(ResourceAmount { name, text, value });
    }
    amounts
}

/// Quantities arrive as strings, but a bare JSON number is accepted too.
fn quantity_text(quantity: &Value) -> String {
    match quantity {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Requests of CPU, memory and ephemeral storage may be below the limit; hugepages and
/// extended resources cannot be overcommitted.
fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

fn resource_name_errors(name: &str, field: &str) -> Vec<FieldError> {
    const CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];
    const OTHER_STANDARD: &[&str] = &[
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
    ];
    let mut errs = invalid_each(field, name, is_qualified_name(name));
    if !errs.is_empty() || name.contains('/') {
        return errs;
    }
    let container_resource = CONTAINER_RESOURCES.contains(&name) || is_hugepages(name);
    if !container_resource && !OTHER_STANDARD.contains(&name) {
        errs.push(FieldError::invalid(
            field,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    if !container_resource {
        errs.push(FieldError::invalid(
            field,
            name,
            "must be a standard resource for containers",
        ));
    }
    errs
}

fn quantity_value_errors(name: &str, text: &str, value: f64, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if value < 0.0 {
        errs.push(FieldError::invalid(field, text, "must be greater than or equal to 0"));
    }
    if !is_native_resource(name) && value.fract() != 0.0 {
        errs.push(FieldError::invalid(field, text, "must be an integer"));
    }
    errs
}

fn request_vs_limit(
    request: &ResourceAmount,
    limit: Option<&ResourceAmount>,
    limits_path: &str,
    requests_path: &str,
) -> Vec<FieldError> {
    let name = request.name;
    let Some(limit) = limit else {
        if is_overcommit_allowed(name) {
            return Vec::new();
        }
        return vec![FieldError::required(
            limits_path,
            "Limit must be set for non overcommitable resources",
        )];
    };
    let (Some(requested), Some(limited)) = (request.value, limit.value) else {
        return Vec::new();
    };
    if requested != limited && !is_overcommit_allowed(name) {
        let detail = format!("must be equal to {name} limit of {}", limit.text);
        return vec![FieldError::invalid(requests_path, &request.text, &detail)];
    }
    if requested > limited {
        let detail = format!("must be less than or equal to {name} limit of {}", limit.text);
        return vec![FieldError::invalid(requests_path, &request.text, &detail)];
    }
    Vec::new()
}

// ---------------------------------------------------------------------------
// Pod updates
// ---------------------------------------------------------------------------

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// What an update may change in a Pod's spec: container and init container images,
/// `activeDeadlineSeconds` (set, or lowered), tolerations (additions, and changes of
/// `tolerationSeconds`) and a negative `terminationGracePeriodSeconds` to 1. `new` is
/// the full pod as it would be stored; run [`validate_pod`] on it as well.
pub fn validate_pod_update(old: &serde_json::Value, new: &serde_json::Value) -> Vec<FieldError> {
    let old_spec = child(old, "spec");
    let new_spec = child(new, "spec");
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        let (list_errs, stop) = container_update_errors(old_spec, new_spec, list);
        errs.extend(list_errs);
        if stop {
            return errs;
        }
    }
    let (deadline_errs, stop) = active_deadline_update_errors(old_spec, new_spec);
    errs.extend(deadline_errs);
    if stop {
        return errs;
    }
    errs.extend(toleration_update_errors(old_spec, new_spec));
    if munge_updatable_fields(old_spec, new_spec) != *old_spec {
        errs.push(FieldError::forbidden("spec", POD_UPDATE_FORBIDDEN));
    }
    errs
}

/// Errors for one container list, and whether checking must stop (containers were
/// added or removed, so the index-wise comparison below is meaningless).
fn container_update_errors(old_spec: &Value, new_spec: &Value, list: &str) -> (Vec<FieldError>, bool) {
    let old = array_at(old_spec, list);
    let new = array_at(new_spec, list);
    let path = format!("spec.{list}");
    if old.len() != new.len() {
        return (
            vec![FieldError::forbidden(
                &path,
                "pod updates may not add or remove containers",
            )],
            true,
        );
    }
    let mut errs = Vec::new();
    for (i, container) in new.iter().enumerate() {
        let field = format!("{path}[{i}].image");
        let image = str_at(container, "image");
        if image.is_empty() {
            errs.push(FieldError::required(&field, ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                &field,
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (errs, false)
}

fn active_deadline_update_errors(old_spec: &Value, new_spec: &Value) -> (Vec<FieldError>, bool) {
    const FIELD: &str = "spec.activeDeadlineSeconds";
    let old = int_at(old_spec, "activeDeadlineSeconds");
    match (old, int_at(new_spec, "activeDeadlineSeconds")) {
        (_, Some(new)) if !(0..=i64::from(i32::MAX)).contains(&new) => {
            let detail = format!("must be between 0 and {}, inclusive", i32::MAX);
            (vec![FieldError::invalid(FIELD, new, &detail)], true)
        }
        (Some(old), Some(new)) if old < new => (
            vec![FieldError::invalid(
                FIELD,
                new,
                "must be less than or equal to previous value",
            )],
            true,
        ),
        (Some(_), None) => (
            vec![FieldError::invalid(
                FIELD,
                BadValue::Json("null".into()),
                "must not update from a positive integer to nil value",
            )],
            false,
        ),
        _ => (Vec::new(), false),
    }
}

fn toleration_update_errors(old_spec: &Value, new_spec: &Value) -> Vec<FieldError> {
    let without_seconds = |t: &Value| {
        let mut t = t.clone();
        if let Some(map) = t.as_object_mut() {
            map.remove("tolerationSeconds");
        }
        t
    };
    let new: Vec<Value> = array_at(new_spec, "tolerations").iter().map(without_seconds).collect();
    let all_kept = array_at(old_spec, "tolerations")
        .iter()
        .all(|old| new.contains(&without_seconds(old)));
    if all_kept {
        Vec::new()
    } else {
        vec![FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        )]
    }
}

/// The new spec with every field an update may change reset to the old value: if the
/// result differs from the old spec, something immutable changed.
fn munge_updatable_fields(old_spec: &Value, new_spec: &Value) -> Value {
    let mut munged = new_spec.clone();
    for list in ["containers", "initContainers"] {
        let old_images: Vec<Option<Value>> = array_at(old_spec, list)
            .iter()
            .map(|c| c.get("image").cloned())
            .collect();
        let Some(containers) = munged.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for (container, old_image) in containers.iter_mut().zip(old_images) {
            copy_field(container, "image", old_image);
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations"] {
        copy_field(&mut munged, key, old_spec.get(key).cloned());
    }
    let old_grace = int_at(old_spec, "terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0) && int_at(new_spec, "terminationGracePeriodSeconds") == Some(1) {
        copy_field(
            &mut munged,
            "terminationGracePeriodSeconds",
            old_spec.get("terminationGracePeriodSeconds").cloned(),
        );
    }
    munged
}

fn copy_field(target: &mut Value, key: &str, value: Option<Value>) {
    let Some(map) = target.as_object_mut() else {
        return;
    };
    match value {
        Some(value) => map.insert(key.to_string(), value),
        None => map.remove(key),
    };
}

// ---------------------------------------------------------------------------
// Secrets, ConfigMaps, Namespaces
// ---------------------------------------------------------------------------

/// Secrets and ConfigMaps share this 1 MiB limit on their data.
const MAX_DATA_SIZE: usize = 1024 * 1024;

/// Validates a Secret: metadata, data keys, base64 data values (also for
/// `stringData` keys, which the server folds into `data`), total size, and the keys
/// the well-known secret types require.
pub fn validate_secret(s: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(child(s, "metadata"), true);
    let mut total = 0;
    if let Some(data) = object_at(s, "data") {
        for (key, value) in sorted_entries(data) {
            let field = format!("data[{key}]");
            errs.extend(invalid_each(&field, key, is_config_map_key(key)));
            match base64_decoded_len(value) {
                Ok(len) => total += len,
                Err(detail) => {
                    // Secret values are never echoed back.
                    errs.push(FieldError::invalid(&field, "<secret contents redacted>", &detail));
                }
            }
        }
    }
    if let Some(string_data) = object_at(s, "stringData") {
        for (key, value) in sorted_entries(string_data) {
            errs.extend(invalid_each(&format!("data[{key}]"), key, is_config_map_key(key)));
            total += value.as_str().map_or(0, str::len);
        }
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
    }
    errs.extend(secret_type_errors(s));
    errs
}

fn secret_type_errors(s: &Value) -> Vec<FieldError> {
    let has = |key: &str| {
        ["data", "stringData"]
            .iter()
            .any(|bag| object_at(s, bag).is_some_and(|m| m.contains_key(key)))
    };
    let required = |key: &str| FieldError::required(&format!("data[{key}]"), "");
    match str_at(s, "type") {
        "kubernetes.io/tls" => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|k| !has(k))
            .map(required)
            .collect(),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            vec![required("username"), required("password")]
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => vec![required("ssh-privatekey")],
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            vec![required(".dockerconfigjson")]
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => vec![required(".dockercfg")],
        "kubernetes.io/service-account-token" => {
            let annotations = child(child(s, "metadata"), "annotations");
            if str_at(annotations, "kubernetes.io/service-account.name").is_empty() {
                vec![FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                )]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// Validates a ConfigMap: metadata, `data` and `binaryData` keys, no key in both,
/// base64 `binaryData` values, and the total size.
pub fn validate_config_map(c: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(child(c, "metadata"), true);
    let data = object_at(c, "data");
    let binary = object_at(c, "binaryData");
    let mut total = 0;
    for (key, value) in data.map(sorted_entries).unwrap_or_default() {
        let field = format!("data[{key}]");
        errs.extend(invalid_each(&field, key, is_config_map_key(key)));
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &field,
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.as_str().map_or(0, str::len);
    }
    for (key, value) in binary.map(sorted_entries).unwrap_or_default() {
        let field = format!("binaryData[{key}]");
        errs.extend(invalid_each(&field, key, is_config_map_key(key)));
        if data.is_some_and(|d| d.contains_key(key)) {
            errs.push(FieldError::invalid(&field, key, "duplicate of key present in data"));
        }
        match base64_decoded_len(value) {
            Ok(len) => total += len,
            Err(detail) => errs.push(FieldError::invalid(&field, "<binary data omitted>", &detail)),
        }
    }
    if total > MAX_DATA_SIZE {
        // The apiserver names no field: the error is about the whole object.
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
    errs
}

/// Validates a Namespace: cluster-scoped metadata whose name is a DNS-1123 label, and
/// qualified-name `spec.finalizers`.
pub fn validate_namespace(n: &Value) -> Vec<FieldError> {
    let mut errs = object_meta_errors(child(n, "metadata"), false, is_dns1123_label);
    let finalizers = array_at(child(n, "spec"), "finalizers");
    errs.extend(finalizer_errors(finalizers, "spec.finalizers"));
    errs
}

/// The decoded length of a base64 value, or Go's decoding error text.
fn base64_decoded_len(value: &Value) -> Result<usize, String> {
    let Some(text) = value.as_str() else {
        return Err("must be a base64-encoded string".to_string());
    };
    match base64_error_offset(text.as_bytes()) {
        Some(offset) => Err(format!("illegal base64 data at input byte {offset}")),
        None => {
            let significant = text.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | b'=')).count();
            Ok(significant * 3 / 4)
        }
    }
}

fn is_base64_alphabet(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

fn skip_newlines(src: &[u8], mut at: usize) -> usize {
    while at < src.len() && matches!(src[at], b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// Where Go's `base64.StdEncoding` (padded, newlines ignored) first rejects `src`,
/// so the error names the same byte offset as the apiserver's.
fn base64_error_offset(src: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let mut digits = 0;
        while digits < 4 {
            if at == src.len() {
                // Clean end only between quanta: padding is mandatory.
                return (digits != 0).then(|| at - digits);
            }
            let byte = src[at];
            at += 1;
            if is_base64_alphabet(byte) {
                digits += 1;
                continue;
            }
            if matches!(byte, b'\r' | b'\n') {
                continue;
            }
            if byte != b'=' || digits < 2 {
                return Some(at - 1);
            }
            return padding_error(src, at, digits);
        }
    }
}

/// Checks what follows the first `=` of a quantum with `digits` data characters.
fn padding_error(src: &[u8], mut at: usize, digits: usize) -> Option<usize> {
    if digits == 2 {
        // "==" is expected; the first "=" is consumed.
        at = skip_newlines(src, at);
        if at == src.len() {
            return Some(src.len());
        }
        if src[at] != b'=' {
            return Some(at - 1);
        }
        at += 1;
    }
    at = skip_newlines(src, at);
    // Anything after the padding is trailing garbage.
    (at < src.len()).then_some(at)
}

// ---------------------------------------------------------------------------
// Quantities (k8s.io/apimachinery/pkg/api/resource)
// ---------------------------------------------------------------------------

/// Why a quantity did not parse; the messages are `resource.ParseQuantity`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuantityError {
    Format,
    Numeric,
    Suffix,
}

impl QuantityError {
    fn message(self) -> &'static str {
        match self {
            QuantityError::Format => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::Numeric => "unable to parse numeric part of quantity",
            QuantityError::Suffix => "unable to parse quantity's suffix",
        }
    }
}

/// The numeric value of a Kubernetes quantity in base units (CPU cores, bytes), for
/// comparisons: `"100m"` is 0.1, `"1Gi"` 1073741824, `"1e3"` 1000. Rejects what the
/// apiserver rejects (`"abc"`, `"1Gii"`, `""`).
#[allow(clippy::result_unit_err)] // the signature other modules rely on
pub fn parse_quantity(s: &str) -> Result<f64, ()> {
    parse_quantity_detailed(s).map_err(|_| ())
}

fn parse_quantity_detailed(s: &str) -> Result<f64, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::Format);
    }
    let parts = split_quantity(s)?;
    let value = match suffix_scale(parts.suffix).ok_or(QuantityError::Suffix)? {
        // Let the float parser round the decimal once, exactly as written.
        Scale::Decimal(exponent) => format!("{}.{}e{exponent}", parts.whole, parts.fraction)
            .parse::<f64>()
            .map_err(|_| QuantityError::Numeric)?,
        Scale::Binary(power) => {
            let mantissa = format!("{}.{}", parts.whole, parts.fraction)
                .parse::<f64>()
                .map_err(|_| QuantityError::Numeric)?;
            mantissa * 2f64.powi(power)
        }
    };
    if !value.is_finite() {
        return Err(QuantityError::Numeric);
    }
    Ok(if parts.positive { value } else { -value })
}

/// A quantity split the way `parseQuantityString` does.
struct QuantityParts<'a> {
    positive: bool,
    whole: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

fn take_digits(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(bytes.len(), |n| from + n)
}

fn split_quantity(s: &str) -> Result<QuantityParts<'_>, QuantityError> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let positive = bytes[0] != b'-';
    if matches!(bytes[0], b'+' | b'-') {
        pos = 1;
    }
    let digits_end = take_digits(bytes, pos);
    // Leading zeros do not matter; an empty whole part counts as 0 (".5" is 0.5).
    let whole = match s[pos..digits_end].trim_start_matches('0') {
        "" => "0",
        w => w,
    };
    pos = digits_end;
    let mut fraction = "";
    if bytes.get(pos) == Some(&b'.') {
        let end = take_digits(bytes, pos + 1);
        fraction = &s[pos + 1..end];
        pos = end;
    }
    let suffix = &s[pos..];
    // The suffix is letters from a fixed set, then an optional signed exponent.
    let letters_end = bytes[pos..]
        .iter()
        .position(|b| !b"eEinumkKMGTP".contains(b))
        .map_or(bytes.len(), |n| pos + n);
    let mut rest = letters_end;
    if matches!(bytes.get(rest), Some(b'+' | b'-')) {
        rest += 1;
    }
    if take_digits(bytes, rest) != bytes.len() {
        return Err(QuantityError::Format);
    }
    Ok(QuantityParts {
        positive,
        whole,
        fraction,
        suffix,
    })
}

enum Scale {
    /// Multiply by 10^n.
    Decimal(i32),
    /// Multiply by 2^n.
    Binary(i32),
}

fn suffix_scale(suffix: &str) -> Option<Scale> {
    let scale = match suffix {
        "" => Scale::Decimal(0),
        "n" => Scale::Decimal(-9),
        "u" => Scale::Decimal(-6),
        "m" => Scale::Decimal(-3),
        "k" => Scale::Decimal(3),
        "M" => Scale::Decimal(6),
        "G" => Scale::Decimal(9),
        "T" => Scale::Decimal(12),
        "P" => Scale::Decimal(15),
        "E" => Scale::Decimal(18),
        "Ki" => Scale::Binary(10),
        "Mi" => Scale::Binary(20),
        "Gi" => Scale::Binary(30),
        "Ti" => Scale::Binary(40),
        "Pi" => Scale::Binary(50),
        "Ei" => Scale::Binary(60),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            Scale::Decimal(exponent.parse().ok()?)
        }
    };
    Some(scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fe(reason: &'static str, field: &str, message: &str) -> FieldError {
        FieldError {
            reason,
            message: message.to_string(),
            field: field.to_string(),
        }
    }

    fn good_pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-1",
                "namespace": "default",
                "labels": {"app": "web", "example.com/tier": "front"},
                "annotations": {"Example.com/Note": "anything goes here"}
            },
            "spec": {
                "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst",
                "terminationGracePeriodSeconds": 30,
                "volumes": [{"name": "data", "emptyDir": {}}],
                "initContainers": [{
                    "name": "init",
                    "image": "busybox",
                    "imagePullPolicy": "IfNotPresent",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                }],
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "prod"},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                        ],
                        "envFrom": [{"configMapRef": {"name": "settings"}}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                            "limits": {"cpu": "1", "memory": "1Gi"}
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "app"}]
                    },
                    {"name": "sidecar", "image": "sidecar:1"}
                ],
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}]
            }
        })
    }

    /// The good pod with `change` applied as a JSON merge patch.
    fn pod_with(change: Value) -> Value {
        let mut pod = good_pod();
        json_patch::merge(&mut pod, &change);
        pod
    }

    fn pod_errors(change: Value) -> Vec<FieldError> {
        validate_pod(&pod_with(change))
    }

    fn with_container(field: &str, value: Value) -> Value {
        let mut pod = good_pod();
        pod["spec"]["containers"][0][field] = value;
        pod
    }

    #[test]
    fn good_pod_is_valid() {
        assert_eq!(validate_pod(&good_pod()), vec![]);
    }

    #[test]
    fn field_error_serializes_like_a_status_cause() {
        let error = FieldError::required("spec.containers[0].image", "");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"})
        );
        assert_eq!(
            error.to_string_for_message(),
            "spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn invalid_message_with_one_error() {
        let errors = [fe(REQUIRED, "spec.containers[0].image", "Required value")];
        assert_eq!(
            invalid_message("Pod", "x", &errors),
            "Pod \"x\" is invalid: spec.containers[0].image: Required value"
        );
    }

    #[test]
    fn invalid_message_with_several_errors_lists_each_once() {
        let a = fe(REQUIRED, "spec.containers[0].image", "Required value");
        let b = fe(
            NOT_FOUND,
            "spec.containers[0].volumeMounts[0].name",
            "Not found: \"nope\"",
        );
        assert_eq!(
            invalid_message("Pod", "x", &[a.clone(), b, a]),
            "Pod \"x\" is invalid: [spec.containers[0].image: Required value, spec.containers[0].volumeMounts[0].name: Not found: \"nope\"]"
        );
        assert_eq!(invalid_message("Pod", "x", &[]), "Pod \"x\" is invalid");
    }

    #[test]
    fn name_must_be_dns_subdomain() {
        let errs = pod_errors(json!({"metadata": {"name": "Foo_Bar"}}));
        assert_eq!(errs, vec![fe(
            INVALID,
            "metadata.name",
            "Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )]);
    }

    #[test]
    fn name_longer_than_253_is_invalid() {
        let name = "a".repeat(254);
        let errs = pod_errors(json!({"metadata": {"name": name}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "metadata.name",
                &format!("Invalid value: \"{name}\": must be no more than 253 characters"),
            )]
        );
    }

    #[test]
    fn name_is_required_unless_generate_name_is_given() {
        let errs = pod_errors(json!({"metadata": {"name": null}}));
        assert_eq!(
            errs,
            vec![fe(
                REQUIRED,
                "metadata.name",
                "Required value: name or generateName is required"
            )]
        );
        assert_eq!(
            pod_errors(json!({"metadata": {"name": null, "generateName": "web-"}})),
            vec![]
        );
    }

    #[test]
    fn namespace_must_be_dns_label() {
        let errs = pod_errors(json!({"metadata": {"namespace": "my.ns"}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "metadata.namespace",
                "Invalid value: \"my.ns\": must not contain dots"
            )]
        );
    }

    #[test]
    fn label_key_and_value_are_checked() {
        let errs = pod_errors(json!({"metadata": {"labels": {"bad key": "ok", "ok": "-bad"}}}));
        assert_eq!(errs, vec![
            fe(INVALID, "metadata.labels", "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
            fe(INVALID, "metadata.labels", "Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
        ]);
    }

    #[test]
    fn label_value_longer_than_63_is_invalid_and_empty_is_fine() {
        let long = "v".repeat(64);
        let errs = pod_errors(json!({"metadata": {"labels": {"a": long, "b": ""}}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "metadata.labels",
                &format!("Invalid value: \"{long}\": must be no more than 63 characters")
            )]
        );
    }

    #[test]
    fn label_key_prefix_must_be_dns_subdomain() {
        let errs = pod_errors(json!({"metadata": {"labels": {"Example.com/x": "y"}}}));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .starts_with("Invalid value: \"Example.com/x\": prefix part a lowercase RFC 1123 subdomain"),
            "{errs:?}"
        );
    }

    #[test]
    fn annotations_total_size_is_limited() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let errs = pod_errors(json!({"metadata": {"annotations": {"big": big}}}));
        assert_eq!(
            errs,
            vec![fe(
                TOO_LONG,
                "metadata.annotations",
                "Too long: may not be more than 262144 bytes"
            )]
        );
    }

    #[test]
    fn annotation_keys_must_be_qualified_names() {
        let errs = pod_errors(json!({"metadata": {"annotations": {"a/b/c": "x"}}}));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .starts_with("Invalid value: \"a/b/c\": a qualified name must consist of"),
            "{errs:?}"
        );
    }

    #[test]
    fn containers_are_required() {
        let errs = pod_errors(json!({"spec": {"containers": []}}));
        assert_eq!(errs, vec![fe(REQUIRED, "spec.containers", "Required value")]);
    }

    #[test]
    fn container_name_is_required_and_a_dns_label() {
        let errs = validate_pod(&with_container("name", json!("")));
        assert_eq!(errs, vec![fe(REQUIRED, "spec.containers[0].name", "Required value")]);
        let errs = validate_pod(&with_container("name", json!("App")));
        assert_eq!(errs, vec![fe(
            INVALID,
            "spec.containers[0].name",
            "Invalid value: \"App\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )]);
    }

    #[test]
    fn container_names_are_unique_across_kinds() {
        let mut pod = good_pod();
        pod["spec"]["containers"][1]["name"] = json!("app");
        pod["spec"]["initContainers"][0]["name"] = json!("app");
        pod["spec"]["ephemeralContainers"] = json!([
            {"name": "app", "image": "debug"},
            {"name": "dbg", "image": "debug"},
            {"name": "dbg", "image": "debug"}
        ]);
        assert_eq!(validate_pod(&pod), vec![
            fe(DUPLICATE, "spec.containers[1].name", "Duplicate value: \"app\""),
            fe(DUPLICATE, "spec.initContainers[0].name", "Duplicate value: \"app\""),
            fe(INVALID, "spec.ephemeralContainers[0].name", "Invalid value: \"app\": must be unique among all containers, init containers and ephemeral containers"),
            fe(DUPLICATE, "spec.ephemeralContainers[2].name", "Duplicate value: \"dbg\""),
        ]);
    }

    #[test]
    fn image_is_required() {
        let errs = validate_pod(&with_container("image", json!(null)));
        assert_eq!(errs, vec![fe(REQUIRED, "spec.containers[0].image", "Required value")]);
    }

    #[test]
    fn container_port_must_be_in_range_and_present() {
        let errs = validate_pod(&with_container(
            "ports",
            json!([{"containerPort": 70000}, {"name": "x"}]),
        ));
        assert_eq!(
            errs,
            vec![
                fe(
                    INVALID,
                    "spec.containers[0].ports[0].containerPort",
                    "Invalid value: 70000: must be between 1 and 65535, inclusive"
                ),
                fe(REQUIRED, "spec.containers[0].ports[1].containerPort", "Required value"),
            ]
        );
    }

    #[test]
    fn port_names_and_protocols_are_checked() {
        let ports = json!([
            {"containerPort": 80, "name": "web", "protocol": "HTTP"},
            {"containerPort": 81, "name": "web"}
        ]);
        let errs = validate_pod(&with_container("ports", ports));
        assert_eq!(
            errs,
            vec![
                fe(
                    NOT_SUPPORTED,
                    "spec.containers[0].ports[0].protocol",
                    "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
                fe(
                    DUPLICATE,
                    "spec.containers[0].ports[1].name",
                    "Duplicate value: \"web\""
                ),
            ]
        );
    }

    #[test]
    fn env_names_must_be_valid() {
        let errs = validate_pod(&with_container("env", json!([{"name": "1BAD", "value": "x"}])));
        assert_eq!(errs, vec![fe(
            INVALID,
            "spec.containers[0].env[0].name",
            "Invalid value: \"1BAD\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
        )]);
    }

    #[test]
    fn env_value_from_needs_exactly_one_source() {
        let env = json!([
            {"name": "A", "valueFrom": {}},
            {"name": "B", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}}
        ]);
        let errs = validate_pod(&with_container("env", env));
        assert_eq!(errs, vec![
            fe(INVALID, "spec.containers[0].env[0].valueFrom", "Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
            fe(INVALID, "spec.containers[0].env[1].valueFrom", "Invalid value: \"\": may not be specified when `value` is not empty"),
            fe(INVALID, "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath", "Invalid value: \"spec.nope\": error converting fieldPath: field label not supported: spec.nope"),
        ]);
    }

    #[test]
    fn env_from_needs_a_source() {
        let errs = validate_pod(&with_container("envFrom", json!([{"prefix": "P_"}])));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.containers[0].envFrom",
                "Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`"
            )]
        );
    }

    #[test]
    fn bad_quantity_is_invalid() {
        let errs = validate_pod(&with_container("resources", json!({"limits": {"cpu": "abc"}})));
        assert_eq!(errs, vec![fe(
            INVALID,
            "spec.containers[0].resources.limits[cpu]",
            "Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        )]);
    }

    #[test]
    fn negative_quantity_is_invalid() {
        let errs = validate_pod(&with_container("resources", json!({"requests": {"memory": "-1Mi"}})));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.containers[0].resources.requests[memory]",
                "Invalid value: \"-1Mi\": must be greater than or equal to 0"
            )]
        );
    }

    #[test]
    fn request_above_limit_is_invalid() {
        let resources = json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}});
        let errs = validate_pod(&with_container("resources", resources));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.containers[0].resources.requests",
                "Invalid value: \"2\": must be less than or equal to cpu limit of 1"
            )]
        );
    }

    #[test]
    fn unknown_resource_name_is_invalid() {
        let errs = validate_pod(&with_container("resources", json!({"limits": {"gpu": "1"}})));
        assert_eq!(
            errs,
            vec![
                fe(
                    INVALID,
                    "spec.containers[0].resources.limits[gpu]",
                    "Invalid value: \"gpu\": must be a standard resource type or fully qualified"
                ),
                fe(
                    INVALID,
                    "spec.containers[0].resources.limits[gpu]",
                    "Invalid value: \"gpu\": must be a standard resource for containers"
                ),
            ]
        );
    }

    #[test]
    fn extended_resource_request_must_equal_limit() {
        let resources = json!({"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}});
        let errs = validate_pod(&with_container("resources", resources));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.containers[0].resources.requests",
                "Invalid value: \"1\": must be equal to example.com/gpu limit of 2"
            )]
        );
    }

    #[test]
    fn volume_mount_must_name_a_volume() {
        let mut pod = good_pod();
        pod["spec"]["initContainers"] = json!([
            {"name": "init", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
            {"name": "init2", "image": "busybox", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]}
        ]);
        assert_eq!(
            validate_pod(&pod),
            vec![fe(
                NOT_FOUND,
                "spec.initContainers[1].volumeMounts[0].name",
                "Not found: \"nope\""
            )]
        );
    }

    #[test]
    fn mount_path_is_required_and_unique() {
        let mounts = json!([
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/data"},
            {"name": "data"}
        ]);
        let errs = validate_pod(&with_container("volumeMounts", mounts));
        assert_eq!(
            errs,
            vec![
                fe(
                    INVALID,
                    "spec.containers[0].volumeMounts[1].mountPath",
                    "Invalid value: \"/data\": must be unique"
                ),
                fe(
                    REQUIRED,
                    "spec.containers[0].volumeMounts[2].mountPath",
                    "Required value"
                ),
            ]
        );
    }

    #[test]
    fn sub_path_may_not_escape_the_volume() {
        let mounts = json!([{"name": "data", "mountPath": "/data", "subPath": "../etc"}]);
        let errs = validate_pod(&with_container("volumeMounts", mounts));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.containers[0].volumeMounts.subPath",
                "Invalid value: \"../etc\": must not contain '..'"
            )]
        );
    }

    #[test]
    fn volume_names_are_required_unique_labels() {
        let errs = pod_errors(json!({"spec": {"volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"emptyDir": {}},
            {"name": "Bad_Name", "emptyDir": {}}
        ]}}));
        assert_eq!(
            errs[0],
            fe(DUPLICATE, "spec.volumes[1].name", "Duplicate value: \"data\"")
        );
        assert_eq!(errs[1], fe(REQUIRED, "spec.volumes[2].name", "Required value"));
        assert_eq!(errs[2].field, "spec.volumes[3].name");
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn volume_needs_exactly_one_source() {
        let errs = pod_errors(json!({"spec": {"volumes": [{"name": "data"}]}}));
        assert_eq!(
            errs,
            vec![
                fe(
                    REQUIRED,
                    "spec.volumes[0]",
                    "Required value: must specify a volume type"
                ),
                // A mount of an invalid volume does not find it.
                fe(
                    NOT_FOUND,
                    "spec.containers[0].volumeMounts[0].name",
                    "Not found: \"data\""
                ),
                fe(
                    NOT_FOUND,
                    "spec.initContainers[0].volumeMounts[0].name",
                    "Not found: \"data\""
                ),
            ]
        );
        let errs =
            pod_errors(json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]}}));
        assert_eq!(
            errs[0],
            fe(
                FORBIDDEN,
                "spec.volumes[0].hostPath",
                "Forbidden: may not specify more than 1 volume type"
            )
        );
    }

    #[test]
    fn volume_sources_check_their_required_fields() {
        let errs = pod_errors(json!({"spec": {
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "s", "secret": {"defaultMode": 1000}},
                {"name": "c", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../x"}]}},
                {"name": "p", "persistentVolumeClaim": {}},
                {"name": "h", "hostPath": {"path": "/x", "type": "Dir"}}
            ]
        }}));
        assert_eq!(errs, vec![
            fe(REQUIRED, "spec.volumes[1].secret.secretName", "Required value"),
            fe(INVALID, "spec.volumes[1].secret.defaultMode", "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive"),
            fe(INVALID, "spec.volumes[2].configMap.items[0].path", "Invalid value: \"../x\": must not contain '..'"),
            fe(REQUIRED, "spec.volumes[3].persistentVolumeClaim.claimName", "Required value"),
            fe(NOT_SUPPORTED, "spec.volumes[4].hostPath.type", "Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\""),
        ]);
    }

    #[test]
    fn restart_policy_must_be_supported() {
        let errs = pod_errors(json!({"spec": {"restartPolicy": "Sometimes"}}));
        assert_eq!(
            errs,
            vec![fe(
                NOT_SUPPORTED,
                "spec.restartPolicy",
                "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"",
            )]
        );
    }

    #[test]
    fn dns_policy_must_be_supported() {
        let errs = pod_errors(json!({"spec": {"dnsPolicy": "Google"}}));
        assert_eq!(errs, vec![fe(
            NOT_SUPPORTED,
            "spec.dnsPolicy",
            "Unsupported value: \"Google\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"",
        )]);
    }

    #[test]
    fn dns_policy_none_needs_nameservers() {
        let errs = pod_errors(json!({"spec": {"dnsPolicy": "None"}}));
        assert_eq!(
            errs,
            vec![fe(
                REQUIRED,
                "spec.dnsConfig",
                "Required value: must provide `dnsConfig` when `dnsPolicy` is None"
            )]
        );
        let errs = pod_errors(json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"searches": ["x"]}}}));
        assert_eq!(
            errs,
            vec![fe(
                REQUIRED,
                "spec.dnsConfig.nameservers",
                "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
            )]
        );
        assert_eq!(
            pod_errors(json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"]}}})),
            vec![]
        );
    }

    #[test]
    fn termination_grace_period_must_not_be_negative() {
        let errs = pod_errors(json!({"spec": {"terminationGracePeriodSeconds": -1}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.terminationGracePeriodSeconds",
                "Invalid value: -1: must be greater than or equal to 0"
            )]
        );
    }

    #[test]
    fn active_deadline_must_be_positive() {
        let errs = pod_errors(json!({"spec": {"activeDeadlineSeconds": 0}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.activeDeadlineSeconds",
                "Invalid value: 0: must be between 1 and 2147483647, inclusive"
            )]
        );
    }

    #[test]
    fn init_container_restart_policy_may_only_be_always() {
        let mut pod = good_pod();
        pod["spec"]["initContainers"][0]["restartPolicy"] = json!("OnFailure");
        assert_eq!(
            validate_pod(&pod),
            vec![fe(
                NOT_SUPPORTED,
                "spec.initContainers[0].restartPolicy",
                "Unsupported value: \"OnFailure\": supported values: \"Always\"",
            )]
        );
        pod["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
        assert_eq!(validate_pod(&pod), vec![]);
    }

    #[test]
    fn image_pull_policy_must_be_supported() {
        let errs = validate_pod(&with_container("imagePullPolicy", json!("Sometimes")));
        assert_eq!(
            errs,
            vec![fe(
                NOT_SUPPORTED,
                "spec.containers[0].imagePullPolicy",
                "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            )]
        );
    }

    #[test]
    fn toleration_operator_and_effect_must_be_supported() {
        let errs = pod_errors(json!({"spec": {"tolerations": [
            {"key": "a", "operator": "Like", "effect": "Sometimes"},
            {"operator": "Equal"},
            {"key": "b", "operator": "Exists", "value": "v"}
        ]}}));
        assert_eq!(errs, vec![
            fe(NOT_SUPPORTED, "spec.tolerations[0].operator", "Unsupported value: \"Like\": supported values: \"Equal\", \"Exists\""),
            fe(NOT_SUPPORTED, "spec.tolerations[0].effect", "Unsupported value: \"Sometimes\": supported values: \"NoExecute\", \"NoSchedule\", \"PreferNoSchedule\""),
            fe(INVALID, "spec.tolerations[1].operator", "Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""),
            fe(INVALID, "spec.tolerations[2].operator", "Invalid value: {\"Key\":\"b\",\"Operator\":\"Exists\",\"Value\":\"v\",\"Effect\":\"\",\"TolerationSeconds\":null}: value must be empty when `operator` is 'Exists'"),
        ]);
    }

    #[test]
    fn node_selector_is_validated_as_labels() {
        let errs = pod_errors(json!({"spec": {"nodeSelector": {"disk": "fast ssd"}}}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.nodeSelector");
        assert!(errs[0]
            .message
            .starts_with("Invalid value: \"fast ssd\": a valid label must be"));
    }

    #[test]
    fn host_alias_ip_must_be_an_ip() {
        let errs = pod_errors(json!({"spec": {"hostAliases": [{"hostnames": ["a.local"]}]}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "spec.hostAliases[0].ip",
                "Invalid value: \"\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            )]
        );
    }

    #[test]
    fn secret_data_keys_and_values_are_checked() {
        let secret = json!({
            "metadata": {"name": "s", "namespace": "default"},
            "data": {"good.key": "aGVsbG8=", "bad key": "aGVsbG8=", "notb64": "abc!"}
        });
        assert_eq!(validate_secret(&secret), vec![
            fe(INVALID, "data[bad key]", "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
            fe(INVALID, "data[notb64]", "Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 3"),
        ]);
    }

    #[test]
    fn tls_secret_needs_its_keys() {
        let secret = json!({
            "metadata": {"name": "s"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": ""}
        });
        assert_eq!(
            validate_secret(&secret),
            vec![fe(REQUIRED, "data[tls.key]", "Required value")]
        );
    }

    #[test]
    fn config_map_keys_may_not_repeat_across_data_and_binary_data() {
        let cm = json!({
            "metadata": {"name": "cm"},
            "data": {"a": "1", "..b": "2"},
            "binaryData": {"a": "AAEC"}
        });
        assert_eq!(
            validate_config_map(&cm),
            vec![
                fe(INVALID, "data[..b]", "Invalid value: \"..b\": must not start with '..'"),
                fe(
                    INVALID,
                    "data[a]",
                    "Invalid value: \"a\": duplicate of key present in binaryData"
                ),
                fe(
                    INVALID,
                    "binaryData[a]",
                    "Invalid value: \"a\": duplicate of key present in data"
                ),
            ]
        );
    }

    #[test]
    fn namespace_name_must_be_dns_label() {
        assert_eq!(validate_namespace(&json!({"metadata": {"name": "team-a"}})), vec![]);
        let errs = validate_namespace(&json!({"metadata": {"name": "team.a"}}));
        assert_eq!(
            errs,
            vec![fe(
                INVALID,
                "metadata.name",
                "Invalid value: \"team.a\": must not contain dots"
            )]
        );
        let errs = validate_namespace(&json!({"metadata": {"name": "x", "namespace": "y"}}));
        assert_eq!(
            errs,
            vec![fe(
                FORBIDDEN,
                "metadata.namespace",
                "Forbidden: not allowed on this type"
            )]
        );
    }

    #[test]
    fn pod_update_may_change_images_and_add_tolerations() {
        let old = good_pod();
        let mut new = good_pod();
        new["spec"]["containers"][0]["image"] = json!("app:2");
        new["spec"]["initContainers"][0]["image"] = json!("busybox:2");
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "extra", "operator": "Exists"}));
        assert_eq!(validate_pod_update(&old, &new), vec![]);
    }

    #[test]
    fn pod_update_may_not_change_other_fields() {
        let old = good_pod();
        let mut new = good_pod();
        new["spec"]["containers"][0]["env"] = json!([]);
        assert_eq!(
            validate_pod_update(&old, &new),
            vec![fe(FORBIDDEN, "spec", &format!("Forbidden: {POD_UPDATE_FORBIDDEN}"))]
        );
    }

    #[test]
    fn pod_update_may_not_remove_tolerations_or_containers() {
        let old = good_pod();
        let mut new = good_pod();
        new["spec"]["tolerations"] = json!([]);
        assert_eq!(
            validate_pod_update(&old, &new),
            vec![fe(
                FORBIDDEN,
                "spec.tolerations",
                "Forbidden: existing toleration can not be modified except its tolerationSeconds",
            )]
        );
        let mut new = good_pod();
        new["spec"]["containers"].as_array_mut().unwrap().pop();
        assert_eq!(
            validate_pod_update(&old, &new),
            vec![fe(
                FORBIDDEN,
                "spec.containers",
                "Forbidden: pod updates may not add or remove containers",
            )]
        );
    }

    #[test]
    fn pod_update_grace_period_only_from_negative_to_one() {
        let mut old = good_pod();
        old["spec"]["terminationGracePeriodSeconds"] = json!(-5);
        let mut new = old.clone();
        new["spec"]["terminationGracePeriodSeconds"] = json!(1);
        assert_eq!(validate_pod_update(&old, &new), vec![]);
        new["spec"]["terminationGracePeriodSeconds"] = json!(10);
        assert_eq!(validate_pod_update(&old, &new).len(), 1);
    }

    #[test]
    fn pod_update_active_deadline_may_only_decrease() {
        let mut old = good_pod();
        old["spec"]["activeDeadlineSeconds"] = json!(30);
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        assert_eq!(
            validate_pod_update(&old, &new),
            vec![fe(
                INVALID,
                "spec.activeDeadlineSeconds",
                "Invalid value: 60: must be less than or equal to previous value",
            )]
        );
    }

    #[test]
    fn quantities_parse_to_base_units() {
        assert_eq!(parse_quantity("100m"), Ok(0.1));
        assert_eq!(parse_quantity("1"), Ok(1.0));
        assert_eq!(parse_quantity("0.5"), Ok(0.5));
        assert_eq!(parse_quantity("1Gi"), Ok(1_073_741_824.0));
        assert_eq!(parse_quantity("500Mi"), Ok(524_288_000.0));
        assert_eq!(parse_quantity("1.5Mi"), Ok(1_572_864.0));
        assert_eq!(parse_quantity("1e3"), Ok(1000.0));
        assert_eq!(parse_quantity("2k"), Ok(2000.0));
        assert_eq!(parse_quantity("+3M"), Ok(3_000_000.0));
        assert_eq!(parse_quantity("-1"), Ok(-1.0));
        assert_eq!(parse_quantity("250u"), Ok(0.00025));
    }

    #[test]
    fn bad_quantities_are_rejected_with_the_apiserver_reason() {
        assert_eq!(parse_quantity("abc"), Err(()));
        assert_eq!(parse_quantity("1Gii"), Err(()));
        assert_eq!(parse_quantity(""), Err(()));
        assert_eq!(parse_quantity_detailed("abc"), Err(QuantityError::Format));
        assert_eq!(parse_quantity_detailed("1Gii"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity_detailed("1e"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity_detailed("1 Gi"), Err(QuantityError::Format));
    }

    #[test]
    fn base64_errors_name_the_offending_byte() {
        assert_eq!(base64_error_offset(b"aGVsbG8="), None);
        assert_eq!(base64_error_offset(b"aGVs\nbG8="), None);
        assert_eq!(base64_error_offset(b""), None);
        assert_eq!(base64_error_offset(b"abc!"), Some(3));
        assert_eq!(base64_error_offset(b"abc"), Some(0));
        assert_eq!(base64_error_offset(b"aGVsbG8=x"), Some(8));
        assert_eq!(base64_error_offset(b"aG="), Some(3));
    }

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
    }
}
