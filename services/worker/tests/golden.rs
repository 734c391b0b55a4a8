//! Golden files for the job Pod: a `config.toml` runner entry and a GitLab job payload in, the
//! Secret and Pod `render-pod` prints out (or the refusal the job would fail with), one case
//! per directory under `tests/golden/` (see its README.md).
//!
//! Each case directory holds `config.toml` (one `[[runners]]` entry), optionally `job.json`
//! (else the shared `tests/golden/job.json`), and the expected result: `pod.yaml` (the YAML
//! stream, Secret then Pod) or `refused.txt` (the error text). YAML is compared structurally
//! (key order and formatting do not matter); a mismatch prints both documents and a line diff
//! of their canonical (sorted-key) form. Every case runs; all failures are reported at the end.
//!
//! `UPDATE_GOLDEN=1 cargo test -p flotilla-worker --test golden` (re)writes the expected files;
//! `GOLDEN_CASE=<substring>` runs only the cases whose name contains it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

const POD: &str = "pod.yaml";
const REFUSED: &str = "refused.txt";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// What rendering a case gave.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The YAML stream render-pod prints (Secret, then Pod).
    Pod(String),
    /// The error text the job fails with.
    Refused(String),
}

/// Renders one case exactly as `flotilla-worker render-pod --config config.toml --job job.json`
/// does (no worker file: the worker's documented defaults). A config.toml that does not load,
/// or has unknown keys (a misspelt keyword would test nothing), is a broken case, not an outcome.
fn render_case(dir: &Path) -> Result<Outcome, String> {
    let config_path = dir.join("config.toml");
    let loaded = flotilla_config::load_runner_config(&config_path)
        .map_err(|errors| format!("{} does not load:\n{errors}", config_path.display()))?;
    let unknown: Vec<String> = loaded.unknown_keys().map(|w| w.to_string()).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "{} has unknown keys:\n{}",
            config_path.display(),
            unknown.join("\n")
        ));
    }
    let own_job = dir.join("job.json");
    let job_path = if own_job.exists() {
        own_job
    } else {
        golden_dir().join("job.json")
    };
    let payload = std::fs::read_to_string(&job_path).map_err(|e| format!("reading {}: {e}", job_path.display()))?;
    let defaults = flotilla_worker::render::defaults(None);
    let render = || match flotilla_worker::render::render(&loaded.config, None, &defaults, &payload) {
        Ok(yaml) => Outcome::Pod(yaml),
        Err(error) => Outcome::Refused(error.to_string()),
    };
    let first = render();
    // Goldens need a deterministic render: no generated names, timestamps or random order.
    let second = render();
    if first != second {
        return Err(format!(
            "rendering twice gave different output (something random or time-based):\n--- first\n{first:?}\n--- second\n{second:?}"
        ));
    }
    Ok(first)
}

/// The documents of a YAML stream, as JSON values (so key order and formatting do not matter).
fn documents(text: &str) -> Result<Vec<Value>, String> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).map_err(|e| e.to_string()))
        .filter(|document| !matches!(document, Ok(Value::Null)))
        .collect()
}

/// `value` with every object's keys in sorted order (whatever serde_json's map keeps).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The canonical text of a stream: each document as sorted-key YAML.
fn canonical(documents: &[Value]) -> String {
    documents
        .iter()
        .map(|document| {
            format!(
                "---\n{}",
                serde_yaml::to_string(&sorted(document)).expect("JSON values are YAML")
            )
        })
        .collect()
}

/// A line diff (longest common subsequence) with 3 lines of context: `-` expected only,
/// `+` rendered only; `@@ N` is the line in the canonical expected text.
fn diff(expected: &str, actual: &str) -> String {
    const CONTEXT: usize = 3;
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, line in `a`, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, a[i]));
            i += 1;
        } else {
            ops.push(('+', i, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let near = |k: usize| changed.iter().any(|&c| c.abs_diff(k) <= CONTEXT);
    let mut out = String::new();
    let mut last_shown: Option<usize> = None;
    for (k, (tag, line, text)) in ops.iter().enumerate() {
        if !near(k) {
            continue;
        }
        if last_shown.is_none_or(|last| last + 1 != k) {
            let _ = writeln!(out, "@@ {}", line + 1);
        }
        let _ = writeln!(out, "{tag} {text}");
        last_shown = Some(k);
    }
    out
}

/// Checks one case against its expected file; `Err` says why it fails.
fn check(dir: &Path, outcome: &Outcome) -> Result<(), String> {
    let (pod_file, refused_file) = (dir.join(POD), dir.join(REFUSED));
    match (pod_file.exists(), refused_file.exists(), outcome) {
        (true, true, _) => Err(format!("has both {POD} and {REFUSED}: keep one")),
        (false, false, _) => Err(format!(
            "has neither {POD} nor {REFUSED} (UPDATE_GOLDEN=1 writes the one it gets)"
        )),
        (true, false, Outcome::Refused(error)) => Err(format!("expected a Pod ({POD}) but was refused:\n{error}")),
        (false, true, Outcome::Pod(yaml)) => Err(format!("expected a refusal ({REFUSED}) but got a Pod:\n{yaml}")),
        (false, true, Outcome::Refused(error)) => {
            let expected = std::fs::read_to_string(&refused_file).map_err(|e| e.to_string())?;
            if expected.trim_end() == error.trim_end() {
                Ok(())
            } else {
                Err(format!(
                    "refused with other text:\n  expected: {}\n  rendered: {}",
                    expected.trim_end(),
                    error.trim_end()
                ))
            }
        }
        (true, false, Outcome::Pod(yaml)) => {
            let expected_text = std::fs::read_to_string(&pod_file).map_err(|e| e.to_string())?;
            let expected = documents(&expected_text).map_err(|e| format!("{POD} is not YAML: {e}"))?;
            let actual = documents(yaml).map_err(|e| format!("the rendered output is not YAML: {e}"))?;
            if expected == actual {
                return Ok(());
            }
            let (expected, actual) = (canonical(&expected), canonical(&actual));
            Err(format!(
                "the rendered Secret and Pod differ from {POD}\n=== diff (- {POD}, + rendered)\n{}=== {POD}\n{expected}=== rendered\n{actual}",
                diff(&expected, &actual)
            ))
        }
    }
}

/// Writes the expected file for `outcome`, removing the other kind.
fn update(dir: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let (write, remove, text) = match outcome {
        Outcome::Pod(yaml) => (POD, REFUSED, yaml.clone()),
        Outcome::Refused(error) => (REFUSED, POD, format!("{}\n", error.trim_end())),
    };
    std::fs::write(dir.join(write), text)?;
    match std::fs::remove_file(dir.join(remove)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[test]
fn rendered_pods_match_the_golden_files() {
    let updating = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty() && v != "0");
    let only = std::env::var("GOLDEN_CASE").ok().filter(|s| !s.is_empty());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("tests/golden is readable").path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            only.as_deref()
                .is_none_or(|only| path.file_name().unwrap().to_string_lossy().contains(only))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases under {}", golden_dir().display());

    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let result = render_case(dir).and_then(|outcome| {
            if updating {
                update(dir, &outcome).map_err(|e| format!("writing the expected file: {e}"))
            } else {
                check(dir, &outcome)
            }
        });
        match result {
            Ok(()) => eprintln!("ok      {name}"),
            Err(why) => {
                eprintln!("FAILED  {name}");
                failures.push(format!("=== case {name}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed (UPDATE_GOLDEN=1 rewrites the expected files; review the change):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} golden cases {}",
        cases.len(),
        if updating { "written" } else { "match" }
    );
}
