//! Lenient query-string parsing, as the API server does it.
//!
//! kube-rs sends `path?` and `path?&a=b`; exec repeats `command=`; so empty segments are
//! skipped, `+` and `%XX` decoded, and repeated keys kept in order.

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                let (key, value) = segment.split_once('=').unwrap_or((segment, ""));
                (decode(key), decode(value))
            })
            .collect();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter: present as `true`/`1` (Go's strconv.ParseBool truths).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "t" | "T" | "TRUE" | "True"))
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value {v:?} for query parameter {key}"))),
        }
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kube_rs_style_queries() {
        let q = Query::parse(Some(
            "&container=main&follow=true&command=sh&command=-c&command=echo+hi%3B+exit+3",
        ));
        assert_eq!(q.get("container"), Some("main"));
        assert!(q.flag("follow"));
        assert_eq!(q.all("command"), vec!["sh", "-c", "echo hi; exit 3"]);
        assert!(Query::parse(Some("")).get("x").is_none());
        assert!(Query::parse(None).get("x").is_none());
    }

    #[test]
    fn decodes_selectors_and_tolerates_bad_escapes() {
        let q = Query::parse(Some("fieldSelector=metadata.name%3Dkp&labelSelector=a%2Cb&x=%zz&y=%4"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=kp"));
        assert_eq!(q.get("labelSelector"), Some("a,b"));
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("y"), Some("%4"));
    }

    #[test]
    fn int_parameters_are_checked() {
        let q = Query::parse(Some("tailLines=20&limitBytes=abc"));
        assert_eq!(q.int("tailLines").unwrap(), Some(20));
        assert_eq!(q.int("limitBytes").unwrap_err().code, 400);
        assert_eq!(q.int("missing").unwrap(), None);
    }
}
