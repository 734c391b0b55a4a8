//! The shell script of one step, in the style of the official runner's bash shell:
//!
//! ```sh
//! # header comment
//! case "$(set -o)" in *"pipefail"*) set -o pipefail;; esac; set -o errexit   # bash flavour
//! set +o noclobber
//! export KEY='value'                                                       # every variable
//! cd '/builds/group/project'
//! printf '\033[32;1m$ %s\033[0;m\n' 'echo hi'                               # the line, echoed literally
//! echo hi                                                                  # …then run
//! ```
//!
//! - The `bash` flavour turns `pipefail` on only when the interpreter has it (the official runner's
//!   own trick), so the script still works when the build image has no bash and the step-runner
//!   falls back to `sh`. The `sh` flavour is `set -e` only.
//! - Every value is single-quoted (`'` becomes `'\''`), so nothing in it is expanded or executed by
//!   the shell; NUL bytes, which no shell can hold, are dropped.
//! - Each script entry is echoed in full (multi-line entries too) as the argument of a fixed
//!   `printf` format, so `%`, `\` and `$` in it print literally, then run inline: with `errexit`,
//!   the first failing command ends the script with its exit code.

use std::path::Path;

use crate::vars::Resolved;

/// `s` single-quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The step's script. `shell` is `bash` or `sh` (the flavour, see the module doc).
pub fn generate(step_name: &str, shell: &str, vars: &[Resolved], project_dir: &Path, lines: &[String]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# flotilla-helper {}: step {}\n",
        env!("CARGO_PKG_VERSION"),
        step_name.replace(['\n', '\r'], " ")
    ));
    if shell == "sh" {
        s.push_str("set -e\n");
    } else {
        s.push_str("case \"$(set -o)\" in *\"pipefail\"*) set -o pipefail;; esac; set -o errexit\n");
    }
    s.push_str("set +o noclobber\n");
    for v in vars {
        s.push_str(&format!("export {}={}\n", v.key, shell_quote(&v.value)));
    }
    s.push_str(&format!("cd {}\n", shell_quote(&project_dir.to_string_lossy())));
    for line in lines {
        s.push_str(&format!("printf '\\033[32;1m$ %s\\033[0;m\\n' {}\n", shell_quote(line)));
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn var(key: &str, value: &str) -> Resolved {
        Resolved {
            key: key.into(),
            value: value.into(),
            file: None,
        }
    }

    const TRICKY: &[&str] = &[
        "it's \"quoted\"",
        "$HOME `id` $(id) ${X:-y} \\$",
        "line1\nline2\n",
        "back\\slash\\n\\t\\\\",
        "",
        "100% %s %d \u{00e9}\u{20ac}",
        "'",
        "''\\''",
        "-n",
    ];

    fn shells() -> Vec<&'static str> {
        ["sh", "bash"]
            .into_iter()
            .filter(|sh| {
                Command::new(sh)
                    .arg("-c")
                    .arg("true")
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            })
            .collect()
    }

    fn run(shell: &str, script: &str) -> (i32, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sh");
        std::fs::write(&path, script).unwrap();
        let out = Command::new(shell).arg(&path).output().unwrap();
        let mut bytes = out.stdout;
        bytes.extend_from_slice(&out.stderr);
        (out.status.code().unwrap_or(-1), bytes)
    }

    #[test]
    fn quoting_round_trips_tricky_values_through_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        let vars: Vec<Resolved> = TRICKY
            .iter()
            .enumerate()
            .map(|(i, v)| var(&format!("V{i}"), v))
            .collect();
        // Print every value between markers, byte for byte.
        let lines: Vec<String> = (0..TRICKY.len())
            .map(|i| format!("printf '<%s>' \"$V{i}\" >> out.txt"))
            .collect();
        for flavour in ["bash", "sh"] {
            for shell in shells() {
                let _ = std::fs::remove_file(dir.path().join("out.txt"));
                let script = generate("script", flavour, &vars, dir.path(), &lines);
                let (code, output) = run(shell, &script);
                assert_eq!(code, 0, "{shell}/{flavour}: {}", String::from_utf8_lossy(&output));
                let got = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
                let want: String = TRICKY.iter().map(|v| format!("<{v}>")).collect();
                assert_eq!(got, want, "{shell}/{flavour}");
            }
        }
    }

    #[test]
    fn echoes_each_line_literally_then_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let lines = vec![
            "echo \"it's\" '$HOME' 100% \\n".to_string(),
            "for i in 1 2; do\n  echo \"n=$i\"\ndone".to_string(),
        ];
        for shell in shells() {
            let script = generate("script", "bash", &[], dir.path(), &lines);
            let (code, output) = run(shell, &script);
            assert_eq!(code, 0);
            let text = String::from_utf8(output).unwrap();
            assert_eq!(
                text,
                "\x1b[32;1m$ echo \"it's\" '$HOME' 100% \\n\x1b[0;m\nit's $HOME 100% n\n\
                 \x1b[32;1m$ for i in 1 2; do\n  echo \"n=$i\"\ndone\x1b[0;m\nn=1\nn=2\n",
                "{shell}"
            );
        }
    }

    #[test]
    fn the_first_failing_command_ends_the_script_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let lines = vec!["echo one".to_string(), "(exit 3)".to_string(), "echo never".to_string()];
        for shell in shells() {
            let (code, output) = run(shell, &generate("script", "bash", &[], dir.path(), &lines));
            let text = String::from_utf8(output).unwrap();
            assert_eq!(code, 3, "{shell}: {text}");
            assert!(text.contains("one\n") && !text.contains("never\n"), "{shell}: {text}");
        }
        // pipefail (bash flavour, when the interpreter has it)
        if shells().contains(&"bash") {
            let lines = vec!["false | true".to_string(), "echo never".to_string()];
            let (code, _) = run("bash", &generate("script", "bash", &[], dir.path(), &lines));
            assert_eq!(code, 1);
        }
    }

    #[test]
    fn cds_into_the_project_dir() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("it's a dir");
        std::fs::create_dir(&project).unwrap();
        let (code, output) = run("sh", &generate("script", "sh", &[], &project, &["pwd -P".to_string()]));
        assert_eq!(code, 0);
        let text = String::from_utf8(output).unwrap();
        assert!(
            text.ends_with(&format!("{}\n", project.canonicalize().unwrap().display())),
            "{text}"
        );
    }
}
