//! Masking of secret values in a job log that arrives in chunks.
//!
//! A secret may be split across two chunks, so the masker holds back the tail of a chunk
//! that could still be the start of a secret, and emits it once the next chunk decides.
//! Each occurrence becomes `[MASKED]`, as the official runner writes it.

use aho_corasick::{AhoCorasick, MatchKind};

pub const MASK: &[u8] = b"[MASKED]";

/// Masks a fixed set of secret values in a stream of chunks.
pub struct Masker {
    matcher: Option<AhoCorasick>,
    secrets: Vec<Vec<u8>>,
    /// Bytes received but not yet emitted: the end of the last chunk, which may be the
    /// beginning of a secret.
    pending: Vec<u8>,
}

impl Masker {
    /// Secrets shorter than 4 bytes are ignored (masking them would garble the log; GitLab
    /// itself refuses to mark such variables masked).
    pub fn new<I, S>(secrets: I) -> Masker
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut secrets: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_vec())
            .filter(|s| s.len() >= 4)
            .collect();
        secrets.sort();
        secrets.dedup();
        let matcher = (!secrets.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&secrets)
                .expect("literal patterns always build")
        });
        Masker {
            matcher,
            secrets,
            pending: Vec::new(),
        }
    }

    /// How many raw bytes are held back, waiting for the next chunk.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Masks `input` (after whatever was pending) and appends what is decided to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Some(matcher) = &self.matcher else {
            out.extend_from_slice(input);
            return;
        };
        self.pending.extend_from_slice(input);
        let data = std::mem::take(&mut self.pending);
        let mut emitted = 0;
        for found in matcher.find_iter(&data) {
            out.extend_from_slice(&data[emitted..found.start()]);
            out.extend_from_slice(MASK);
            emitted = found.end();
        }
        // The tail after the last match may begin a secret that the next chunk completes.
        let hold = self.undecided_tail(&data[emitted..]);
        let decided_end = data.len() - hold;
        out.extend_from_slice(&data[emitted..decided_end]);
        self.pending = data[decided_end..].to_vec();
    }

    /// The stream ended: emits what was held back (it was not a secret).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.pending);
    }

    /// Length of the longest suffix of `tail` that is a proper prefix of some secret.
    fn undecided_tail(&self, tail: &[u8]) -> usize {
        let longest = self.secrets.iter().map(Vec::len).max().unwrap_or(0);
        let max = tail.len().min(longest.saturating_sub(1));
        (1..=max)
            .rev()
            .find(|&n| {
                let suffix = &tail[tail.len() - n..];
                self.secrets.iter().any(|s| s.starts_with(suffix))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_chunks(secrets: &[&str], chunks: &[&str]) -> String {
        let mut masker = Masker::new(secrets.iter().copied());
        let mut out = Vec::new();
        for chunk in chunks {
            masker.push(chunk.as_bytes(), &mut out);
        }
        masker.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masks_whole_and_repeated_occurrences() {
        assert_eq!(
            mask_chunks(&["s3cr3t-value"], &["a s3cr3t-value b s3cr3t-value\n"]),
            "a [MASKED] b [MASKED]\n"
        );
    }

    #[test]
    fn masks_across_chunk_boundaries_at_every_split() {
        let text = "token=s3cr3t-value;";
        for split in 0..text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(
                mask_chunks(&["s3cr3t-value"], &[a, b]),
                "token=[MASKED];",
                "split at {split}"
            );
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        let chunks: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(mask_chunks(&["s3cr3t-value"], &chunks), "token=[MASKED];");
    }

    #[test]
    fn the_longest_secret_wins_and_short_ones_are_ignored() {
        assert_eq!(
            mask_chunks(&["abcd", "abcdefgh", "x"], &["abcdefgh abcd x"]),
            "[MASKED] [MASKED] x"
        );
    }

    #[test]
    fn a_prefix_that_never_completes_is_emitted_at_the_end() {
        assert_eq!(
            mask_chunks(&["s3cr3t-value"], &["ends with s3cr3t"]),
            "ends with s3cr3t"
        );
        let mut masker = Masker::new(["s3cr3t-value"]);
        let mut out = Vec::new();
        masker.push(b"ends with s3cr", &mut out);
        assert_eq!(out, b"ends with ");
        assert_eq!(masker.pending_len(), 4);
    }

    #[test]
    fn without_secrets_everything_passes_through() {
        assert_eq!(mask_chunks(&[], &["plain ", "text"]), "plain text");
    }
}
