//! Base URL normalisation (reference §0): the runner's `url` with trailing `/` and a trailing
//! `/ci` stripped, plus `/api/v4/`.
//!
//! Old runner configs point at `https://gitlab.example.com/ci`; instances under a relative URL
//! root (`https://example.com/gitlab`) keep their path.

use url::Url;

use crate::error::GitlabError;
use crate::types::redact_url_password;

/// The `/api/v4/` base for a GitLab URL as written in `config.toml`.
pub(crate) fn api_base(configured: &str) -> Result<Url, GitlabError> {
    let invalid = |reason| GitlabError::InvalidUrl {
        url: redact_url_password(configured),
        reason,
    };
    let trimmed = configured.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/ci").unwrap_or(trimmed);
    let mut url = Url::parse(trimmed).map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("only http and https are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let path = format!("{}/api/v4/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> String {
        api_base(s).unwrap().to_string()
    }

    #[test]
    fn normalisation() {
        assert_eq!(base("https://gitlab.example.com"), "https://gitlab.example.com/api/v4/");
        assert_eq!(
            base("https://gitlab.example.com/"),
            "https://gitlab.example.com/api/v4/"
        );
        assert_eq!(
            base("https://gitlab.example.com//"),
            "https://gitlab.example.com/api/v4/"
        );
        assert_eq!(
            base("https://gitlab.example.com/ci"),
            "https://gitlab.example.com/api/v4/"
        );
        assert_eq!(
            base("https://gitlab.example.com/ci/"),
            "https://gitlab.example.com/api/v4/"
        );
        assert_eq!(
            base("http://127.0.0.1:8080/gitlab/"),
            "http://127.0.0.1:8080/gitlab/api/v4/"
        );
        assert_eq!(base("https://h/gitlab/ci"), "https://h/gitlab/api/v4/");
        // Only one trailing /ci is removed, and only as a whole path segment.
        assert_eq!(base("https://h/ci/ci"), "https://h/ci/api/v4/");
        assert_eq!(base("https://h/magic"), "https://h/magic/api/v4/");
    }

    #[test]
    fn rejects_unusable_urls() {
        for bad in ["", "gitlab.example.com", "ftp://h", "unix:/var/run/x"] {
            assert!(api_base(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_does_not_echo_a_password() {
        let err = api_base("ftp://u:hunter2@h").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
