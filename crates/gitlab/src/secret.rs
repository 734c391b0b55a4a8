//! The workspace's one credential type, re-exported where this crate's modules expect it.

pub use flotilla_secret::{Secret, MASK};
