//! What loading a file reports: [`ConfigError`]s (the file is refused, every one of them listed)
//! and [`Warning`]s (the file is used, but something in it is ignored or deprecated).

use std::fmt;
use std::path::PathBuf;

use crate::path::KeyPath;

/// One reason a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML; nothing else can be checked.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A value is missing, of the wrong type, or not allowed.
    #[error("{path}: {reason}")]
    Invalid { path: KeyPath, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(path: &KeyPath, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.clone(),
            reason: reason.into(),
        }
    }

    /// The key the error is about (none for read and syntax errors).
    pub fn path(&self) -> Option<&KeyPath> {
        match self {
            Self::Invalid { path, .. } => Some(path),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }

    /// Why the value was refused, without the key path.
    pub fn reason(&self) -> String {
        match self {
            Self::Invalid { reason, .. } => reason.clone(),
            Self::Syntax { message, .. } => message.clone(),
            Self::Read { source, .. } => source.to_string(),
        }
    }
}

/// Every error found in one file, plus the warnings found before giving up.
///
/// `Display` writes one error per line, in file order where known.
#[derive(Debug)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}

impl ConfigErrors {
    pub(crate) fn single(error: ConfigError) -> Self {
        Self {
            errors: vec![error],
            warnings: Vec::new(),
        }
    }

    /// The error about `path` (written as displayed, e.g. `runners[0].url`), if there is one.
    pub fn at(&self, path: &str) -> Option<&ConfigError> {
        self.errors
            .iter()
            .find(|error| error.path().map(|error_path| error_path.to_string()).as_deref() == Some(path))
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.errors.iter().enumerate() {
            if position > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What kind of thing a [`Warning`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// No setting has this name here; its value is ignored. The hint says what was probably meant.
    UnknownKey { hint: Option<String> },
    /// The setting works but is deprecated; the text says what replaces it.
    Deprecated(String),
    /// The setting is read, but something about it deserves the operator's attention.
    Note(String),
}

/// Something in a file that does not stop it from loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub path: KeyPath,
    pub kind: WarningKind,
}

impl Warning {
    pub(crate) fn note(path: &KeyPath, text: impl Into<String>) -> Self {
        Self {
            path: path.clone(),
            kind: WarningKind::Note(text.into()),
        }
    }

    pub fn is_unknown_key(&self) -> bool {
        matches!(self.kind, WarningKind::UnknownKey { .. })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            WarningKind::UnknownKey { hint: None } => write!(f, "{}: unknown key, ignored", self.path),
            WarningKind::UnknownKey { hint: Some(hint) } => {
                write!(f, "{}: unknown key, ignored ({hint})", self.path)
            }
            WarningKind::Deprecated(text) => write!(f, "{}: deprecated: {text}", self.path),
            WarningKind::Note(text) => write!(f, "{}: {text}", self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_one_per_line() {
        let runner = KeyPath::root().key("runners").index(0);
        let errors = ConfigErrors {
            errors: vec![
                ConfigError::invalid(&runner.key("url"), "is required"),
                ConfigError::invalid(&runner.key("token"), "is required"),
            ],
            warnings: Vec::new(),
        };
        assert_eq!(
            errors.to_string(),
            "runners[0].url: is required\nrunners[0].token: is required"
        );
        assert_eq!(errors.at("runners[0].token").unwrap().reason(), "is required");
        assert!(errors.at("runners[1].token").is_none());
    }

    #[test]
    fn warnings_name_the_key_and_the_hint() {
        let warning = Warning {
            path: KeyPath::root().key("dns_config"),
            kind: WarningKind::UnknownKey {
                hint: Some("a key of [runners.kubernetes]".into()),
            },
        };
        assert_eq!(
            warning.to_string(),
            "dns_config: unknown key, ignored (a key of [runners.kubernetes])"
        );
        assert!(warning.is_unknown_key());
    }
}
