//! The validation pass run on a decoded file: [`Validator`] collects errors and warnings with
//! their key paths, [`Validate`] is implemented by each section, and the `check_*` helpers hold
//! the rules several sections share (URLs, Kubernetes names, `KEY=VALUE` entries).

use crate::error::{ConfigError, Warning, WarningKind};
use crate::path::KeyPath;

/// Collects what the validation pass finds; nothing stops at the first problem.
#[derive(Debug, Default)]
pub(crate) struct Validator {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

/// A section of a configuration file that can check itself.
pub(crate) trait Validate {
    /// Records every problem of `self`, found at `path`, into `validator`.
    fn validate(&self, path: &KeyPath, validator: &mut Validator);
}

impl Validator {
    pub fn error(&mut self, path: &KeyPath, reason: impl Into<String>) {
        self.errors.push(ConfigError::invalid(path, reason));
    }

    pub fn note(&mut self, path: &KeyPath, text: impl Into<String>) {
        self.warnings.push(Warning::note(path, text));
    }

    pub fn deprecated(&mut self, path: &KeyPath, text: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.clone(),
            kind: WarningKind::Deprecated(text.into()),
        });
    }

    /// Records "is required" when `value` is empty; true when it is set.
    pub fn require(&mut self, path: &KeyPath, value: &str) -> bool {
        if value.trim().is_empty() {
            self.error(path, "is required");
            return false;
        }
        true
    }

    /// An absolute `http://` or `https://` URL with a host.
    pub fn check_http_url(&mut self, path: &KeyPath, value: &str) {
        match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {}
            _ => self.error(
                path,
                format!("{value:?} is not an absolute http(s) URL (e.g. \"https://gitlab.example.com\")"),
            ),
        }
    }

    /// A Kubernetes object name of the DNS-1123 label kind (namespaces, volume names).
    pub fn check_dns_label(&mut self, path: &KeyPath, value: &str) {
        if !is_dns_label(value) {
            self.error(
                path,
                format!("{value:?} is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)"),
            );
        }
    }

    /// A Kubernetes object name of the DNS-1123 subdomain kind (secrets, service accounts).
    pub fn check_dns_subdomain(&mut self, path: &KeyPath, value: &str) {
        if !is_dns_subdomain(value) {
            self.error(
                path,
                format!("{value:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')"),
            );
        }
    }

    /// A label, annotation, node-selector or toleration key (`[prefix/]name`).
    pub fn check_qualified_name(&mut self, path: &KeyPath, key: &str) {
        if let Err(reason) = qualified_name(key) {
            self.error(path, format!("{key:?} is not a valid Kubernetes key: {reason}"));
        }
    }

    /// A label value (at most 63 characters, alphanumerics with '-', '_', '.' inside).
    pub fn check_label_value(&mut self, path: &KeyPath, value: &str) {
        if !is_label_value(value) {
            self.error(path, format!("{value:?} is not a valid Kubernetes label value"));
        }
    }

    /// A `KEY=VALUE` environment entry.
    pub fn check_env_entry(&mut self, path: &KeyPath, entry: &str) {
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains(char::is_whitespace) => {}
            _ => self.error(path, format!("{entry:?} is not of the form KEY=VALUE")),
        }
    }
}

/// Expanded at job time (`$CI_JOB_ID`), so not checkable when the file is loaded.
pub(crate) fn has_variables(value: &str) -> bool {
    value.contains('$')
}

fn is_alphanumeric_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub(crate) fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value.chars().all(|c| is_alphanumeric_lower(c) || c == '-')
        && value.starts_with(is_alphanumeric_lower)
        && value.ends_with(is_alphanumeric_lower)
}

pub(crate) fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn qualified_name(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if !is_dns_subdomain(prefix) {
            return Err("its prefix must be a DNS subdomain");
        }
    }
    if name.is_empty() {
        return Err("the name part is empty");
    }
    if !is_label_value(name) {
        return Err(
            "the name part must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(check: impl FnOnce(&mut Validator, &KeyPath)) -> Option<String> {
        let mut validator = Validator::default();
        check(&mut validator, &KeyPath::root().key("field"));
        validator.errors.first().map(ToString::to_string)
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert_eq!(
            first_error(|v, p| v.check_http_url(p, "https://gitlab.example.com")),
            None
        );
        assert_eq!(first_error(|v, p| v.check_http_url(p, "http://10.0.0.1:8080/ci")), None);
        let error = first_error(|v, p| v.check_http_url(p, "gitlab.example.com")).unwrap();
        assert!(
            error.starts_with("field: \"gitlab.example.com\" is not an absolute http(s) URL"),
            "{error}"
        );
        assert!(first_error(|v, p| v.check_http_url(p, "ftp://x")).is_some());
    }

    #[test]
    fn kubernetes_names() {
        assert!(is_dns_label("ci-jobs"));
        assert!(!is_dns_label("CI"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("registry.example.com"));
        assert!(!is_dns_subdomain("a..b"));
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("node-role.kubernetes.io/master").is_ok());
        assert!(qualified_name("gitlab").is_ok());
        assert!(qualified_name("Example.com/x").is_err());
        assert!(qualified_name("a/").is_err());
        assert!(qualified_name("a b").is_err());
    }

    #[test]
    fn env_entries() {
        assert_eq!(first_error(|v, p| v.check_env_entry(p, "A=1")), None);
        assert_eq!(first_error(|v, p| v.check_env_entry(p, "A=")), None);
        assert!(first_error(|v, p| v.check_env_entry(p, "A"))
            .unwrap()
            .contains("KEY=VALUE"));
        assert!(first_error(|v, p| v.check_env_entry(p, "=1")).is_some());
    }
}
