//! The runner's `output_limit`: past it, a notice is written once and the rest of the log
//! is dropped (the job keeps running), as the official runner does.

/// Caps a job log at a number of bytes.
pub struct OutputLimit {
    limit: u64,
    written: u64,
    exceeded: bool,
}

impl OutputLimit {
    pub fn new(limit_bytes: u64) -> OutputLimit {
        OutputLimit {
            limit: limit_bytes,
            written: 0,
            exceeded: false,
        }
    }

    /// Accounts for `bytes` already written before a restart.
    pub fn skip(&mut self, bytes: u64) {
        self.written = bytes.min(self.limit);
        self.exceeded = bytes > self.limit;
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Appends the part of `input` that still fits to `out`, cut at a UTF-8 boundary,
    /// followed by the notice the first time the limit is reached.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.exceeded {
            return;
        }
        let room = (self.limit - self.written) as usize;
        if input.len() <= room {
            out.extend_from_slice(input);
            self.written += input.len() as u64;
            return;
        }
        let mut cut = room;
        // Do not split a multi-byte character: back up over continuation bytes.
        while cut > 0 && cut < input.len() && (input[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        out.extend_from_slice(&input[..cut]);
        out.extend_from_slice(self.notice().as_bytes());
        self.written = self.limit;
        self.exceeded = true;
    }

    fn notice(&self) -> String {
        format!(
            "\n\x1b[33;1mJob's log exceeded limit of {} bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n",
            self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_output_until_the_limit_then_writes_the_notice_once() {
        let mut limit = OutputLimit::new(10);
        let mut out = Vec::new();
        limit.push(b"12345", &mut out);
        limit.push(b"67890abc", &mut out);
        limit.push(b"more", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("1234567890\n"), "{text}");
        assert_eq!(text.matches("Job's log exceeded limit of 10 bytes.").count(), 1);
        assert!(
            text.ends_with("collected.\x1b[0;m\n"),
            "nothing after the notice: {text:?}"
        );
        assert!(!text.contains("abc"));
        assert!(limit.exceeded());
    }

    #[test]
    fn never_cuts_inside_a_character() {
        let mut limit = OutputLimit::new(4);
        let mut out = Vec::new();
        limit.push("abcé".as_bytes(), &mut out);
        assert!(out.starts_with(b"abc\n"), "{:?}", String::from_utf8_lossy(&out));
    }
}
