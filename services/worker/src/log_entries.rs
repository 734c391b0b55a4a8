//! Reading `pods/log?timestamps=true` back into the bytes the container wrote.
//!
//! Each log entry is `<RFC 3339 timestamp> <bytes>`. A line longer than the runtime's
//! limit (16 KiB, containerd's and kube-sim's) is stored as partial entries without a
//! newline, so the API returns them glued: `<ts1> <16 KiB><ts2> <rest>\n`. Such a line is
//! split back at the 16 KiB boundaries where a timestamp follows.

/// Content length at which the runtime splits a line into partial entries.
pub const PARTIAL_ENTRY_BYTES: usize = 16 * 1024;

/// One entry: its timestamp and the bytes the container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub timestamp: String,
    pub bytes: Vec<u8>,
}

fn looks_like_timestamp(bytes: &[u8]) -> Option<usize> {
    // `2024-05-01T10:00:00Z` up to `2024-05-01T10:00:00.123456789Z`, then a space.
    let end = bytes.iter().take(40).position(|b| *b == b' ')?;
    let candidate = std::str::from_utf8(&bytes[..end]).ok()?;
    let shape = candidate.len() >= 20
        && candidate.as_bytes()[4] == b'-'
        && candidate.as_bytes()[10] == b'T'
        && candidate.ends_with('Z');
    shape.then_some(end)
}

/// Splits one line read from the log stream (up to and including its newline, if any).
pub fn split_line(line: &[u8]) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    let mut rest = line;
    loop {
        let Some(ts_end) = looks_like_timestamp(rest) else {
            // Not an entry (should not happen): keep the bytes rather than lose them.
            if let Some(last) = entries.last_mut() {
                let last: &mut LogEntry = last;
                last.bytes.extend_from_slice(rest);
            } else if !rest.is_empty() {
                entries.push(LogEntry {
                    timestamp: String::new(),
                    bytes: rest.to_vec(),
                });
            }
            return entries;
        };
        let timestamp = String::from_utf8_lossy(&rest[..ts_end]).into_owned();
        let content = &rest[ts_end + 1..];
        let glued = content.len() > PARTIAL_ENTRY_BYTES
            && !content[..PARTIAL_ENTRY_BYTES].contains(&b'\n')
            && looks_like_timestamp(&content[PARTIAL_ENTRY_BYTES..]).is_some();
        if glued {
            entries.push(LogEntry {
                timestamp,
                bytes: content[..PARTIAL_ENTRY_BYTES].to_vec(),
            });
            rest = &content[PARTIAL_ENTRY_BYTES..];
        } else {
            entries.push(LogEntry {
                timestamp,
                bytes: content.to_vec(),
            });
            return entries;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_keeps_its_newline() {
        let entries = split_line(b"2026-01-01T00:00:00.000000001Z hello world\n");
        assert_eq!(
            entries,
            vec![LogEntry {
                timestamp: "2026-01-01T00:00:00.000000001Z".into(),
                bytes: b"hello world\n".to_vec()
            }]
        );
        assert_eq!(split_line(b"2026-01-01T00:00:00Z no newline")[0].bytes, b"no newline");
    }

    #[test]
    fn glued_partial_entries_are_split_back() {
        let long = "x".repeat(PARTIAL_ENTRY_BYTES);
        let line = format!("2026-01-01T00:00:00.1Z {long}2026-01-01T00:00:00.2Z {long}2026-01-01T00:00:00.3Z end\n");
        let entries = split_line(line.as_bytes());
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].timestamp, "2026-01-01T00:00:00.2Z");
        let joined: Vec<u8> = entries.iter().flat_map(|e| e.bytes.clone()).collect();
        assert_eq!(joined, format!("{long}{long}end\n").into_bytes());
    }

    #[test]
    fn text_that_merely_contains_a_timestamp_is_not_split() {
        let line = b"2026-01-01T00:00:00Z the build started at 2026-01-01T00:00:00Z ok\n";
        assert_eq!(split_line(line).len(), 1);
    }
}
