//! [`TraceChecksum`]: the running CRC32 and byte count of a job log, as sent in `PUT /jobs/:id`.
//!
//! GitLab compares `output.checksum` (`crc32:%08x`, IEEE polynomial) and `output.bytesize`
//! against the log it stored, and answers `202` (accepted, not completed) until the live log
//! chunks it has persisted match. The checksum must therefore cover exactly the bytes that were
//! (or will be) PATCHed, after masking and the output limit.

use crate::client::TraceOutput;

/// Incremental CRC32 (IEEE) and byte count over a job log.
#[derive(Clone, Debug, Default)]
pub struct TraceChecksum {
    hasher: crc32fast::Hasher,
    bytesize: u64,
}

impl TraceChecksum {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes of the log.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytesize += bytes.len() as u64;
    }

    /// The CRC32 so far as a number.
    pub fn crc32(&self) -> u32 {
        self.hasher.clone().finalize()
    }

    /// `crc32:` followed by 8 lowercase hex digits, the format of `output.checksum`.
    pub fn checksum(&self) -> String {
        format!("crc32:{:08x}", self.crc32())
    }

    /// Number of bytes seen (`output.bytesize`).
    pub fn bytesize(&self) -> u64 {
        self.bytesize
    }

    /// The `output` object of a job update describing this log.
    pub fn output(&self) -> TraceOutput {
        TraceOutput {
            checksum: Some(self.checksum()),
            bytesize: self.bytesize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_log() {
        let c = TraceChecksum::new();
        assert_eq!(c.checksum(), "crc32:00000000");
        assert_eq!(c.bytesize(), 0);
    }

    #[test]
    fn known_value() {
        // The CRC32 (IEEE) check value of "123456789" is 0xcbf43926.
        let mut c = TraceChecksum::new();
        c.update(b"123456789");
        assert_eq!(c.checksum(), "crc32:cbf43926");
        assert_eq!(c.bytesize(), 9);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data = b"section_start:1:step_script\r\x1b[0K$ echo hi\nhi\n";
        let mut whole = TraceChecksum::new();
        whole.update(data);
        let mut parts = TraceChecksum::new();
        for chunk in data.chunks(7) {
            parts.update(chunk);
        }
        assert_eq!(whole.checksum(), parts.checksum());
        assert_eq!(parts.bytesize(), data.len() as u64);
        // Reading the checksum does not disturb the running state.
        parts.update(b"x");
        whole.update(b"x");
        assert_eq!(whole.checksum(), parts.checksum());
    }

    #[test]
    fn leading_zeros_are_kept() {
        let mut c = TraceChecksum::new();
        // CRC32("a") = 0xe8b7be43; find a short input with a leading zero nibble instead.
        let input = (0u32..)
            .map(|i| i.to_string())
            .find(|s| crc32fast::hash(s.as_bytes()) < 0x1000_0000)
            .unwrap();
        c.update(input.as_bytes());
        let s = c.checksum();
        assert_eq!(s.len(), "crc32:".len() + 8);
        assert!(s.starts_with("crc32:0"));
    }

    #[test]
    fn output_object() {
        let mut c = TraceChecksum::new();
        c.update(b"123456789");
        let out = c.output();
        assert_eq!(out.checksum.as_deref(), Some("crc32:cbf43926"));
        assert_eq!(out.bytesize, 9);
    }
}
