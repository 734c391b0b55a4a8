//! `fleetctl runner` end to end: the real binary against gitlab-sim. A legacy registration's
//! runner is registered, verified, unregistered and gone; a runner created in GitLab (`glrt-`)
//! is verified and loses only the coordinator's runner manager; refusals exit 1, usage errors 2,
//! an unreachable GitLab 3; and no token is printed except in the entry meant for config.toml.

use std::path::Path;
use std::time::Duration;

use gitlab_sim::{GitlabSim, SimConfig};

const REGISTRATION_TOKEN: &str = "reg-token-very-secret";
const CREATED_TOKEN: &str = "glrt-created-in-the-ui-secret";
const SYSTEM_ID: &str = "s_0123456789ab";

/// What a run of fleetctl left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts that neither stream holds `secret`.
    fn without(self, secret: &str) -> Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "a token was printed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

async fn fleetctl(args: &[&str]) -> Run {
    fleetctl_with_env(args, &[]).await
}

async fn fleetctl_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(args)
        // Only what the test passes counts.
        .env_remove("FLEETCTL_GITLAB_URL")
        .env_remove("FLEETCTL_RUNNER_TOKEN")
        .env_remove("FLEETCTL_REGISTRATION_TOKEN")
        .env_remove("KUBERNETES_SERVICE_ACCOUNT")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run fleetctl");
    Run {
        code: output.status.code().expect("fleetctl exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

async fn sim(registration_token: Option<&str>) -> GitlabSim {
    GitlabSim::start(SimConfig {
        runner_tokens: vec![CREATED_TOKEN.into()],
        registration_token: registration_token.map(str::to_owned),
        long_poll: Duration::ZERO,
        ..SimConfig::default()
    })
    .await
    .expect("start gitlab-sim")
}

/// A coordinator data_dir whose `.runner_system_id` says [`SYSTEM_ID`].
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".runner_system_id"), format!("{SYSTEM_ID}\n")).unwrap();
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// The printed entry, loaded the way the coordinator loads its config.toml.
fn load_entry(stdout: &str) -> flotilla_config::RunnerConfig {
    let text = format!("concurrent = 4\n\n{stdout}");
    let loaded = flotilla_config::runner_config_from_str(&text)
        .unwrap_or_else(|errors| panic!("the entry does not load: {errors}\n{text}"));
    assert_eq!(loaded.unknown_keys().count(), 0, "{text}");
    let mut runners = loaded.config.runners;
    assert_eq!(runners.len(), 1);
    runners.remove(0)
}

#[tokio::test]
async fn legacy_register_verify_unregister() {
    let sim = sim(Some(REGISTRATION_TOKEN)).await;
    let url = sim.url().to_owned();

    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        &url,
        "--registration-token",
        REGISTRATION_TOKEN,
        "--name",
        "k8s-fleet",
        "--description",
        "Flotilla on Kubernetes",
        "--tag-list",
        "k8s-default",
    ])
    .await
    .without(REGISTRATION_TOKEN);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // GitLab has the runner, with the opt-in tag and no untagged jobs.
    let runners = sim.runners();
    assert_eq!(runners.len(), 2, "the created runner and the new one");
    let gitlab_runner = runners.last().unwrap().clone();
    assert_eq!(gitlab_runner.description, "Flotilla on Kubernetes");
    assert_eq!(gitlab_runner.tags, ["k8s-default"]);
    assert!(!gitlab_runner.run_untagged);
    assert!(gitlab_runner.locked, "locked by default, as gitlab-runner registers");
    assert_eq!(gitlab_runner.name.as_deref(), Some("flotilla"));

    // The printed entry is the coordinator's [[runners]] entry for it.
    let entry = load_entry(&run.stdout);
    assert_eq!(entry.name, "k8s-fleet");
    assert_eq!(entry.url, url);
    assert_eq!(entry.id, gitlab_runner.id as i64);
    assert_eq!(entry.token.expose(), gitlab_runner.token);
    assert_eq!(entry.executor, "kubernetes");
    assert!(entry.token_obtained_at.is_some());
    assert_eq!(entry.token_expires_at.as_deref(), Some("0001-01-01T00:00:00Z"));
    assert!(
        !run.stderr.contains(&gitlab_runner.token),
        "the token is on stdout only"
    );
    let token = gitlab_runner.token.as_str();

    let run = fleetctl(&["runner", "verify", "--url", &url, "--token", token])
        .await
        .without(token);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "valid: GitLab knows runner {}; the token does not expire\n",
            gitlab_runner.id
        )
    );

    let run = fleetctl(&["runner", "unregister", "--url", &url, "--token", token])
        .await
        .without(token);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(sim.runner(gitlab_runner.id).is_none(), "the runner is deleted");

    let run = fleetctl(&["runner", "verify", "--url", &url, "--token", token])
        .await
        .without(token);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("GitLab does not know this runner token"),
        "{}",
        run.stderr
    );
    let run = fleetctl(&["runner", "unregister", "--url", &url, "--token", token])
        .await
        .without(token);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn wrong_registration_token_is_refused() {
    let sim = sim(Some(REGISTRATION_TOKEN)).await;
    let wrong = "reg-token-mistyped-secret";
    let run = fleetctl(&["runner", "register", "--url", sim.url(), "--registration-token", wrong])
        .await
        .without(wrong);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("fleetctl: GitLab refused the registration token"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.runners().len(), 1, "no runner was created");
}

#[tokio::test]
async fn gitlab_refusals_say_what_gitlab_answered() {
    let sim = sim(Some(REGISTRATION_TOKEN)).await;
    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        sim.url(),
        "--registration-token",
        REGISTRATION_TOKEN,
        "--maximum-timeout",
        "60",
    ])
    .await
    .without(REGISTRATION_TOKEN);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("unexpected HTTP status 400: {\"maximum_timeout\":[\"needs to be at least 10 minutes\"]}"),
        "{}",
        run.stderr
    );

    let disabled = self::sim(None).await;
    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        disabled.url(),
        "--registration-token",
        REGISTRATION_TOKEN,
    ])
    .await
    .without(REGISTRATION_TOKEN);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("410"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("hint: this GitLab does not accept registration tokens"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn json_output_of_a_registration() {
    let sim = sim(Some(REGISTRATION_TOKEN)).await;
    let run = fleetctl(&[
        "--output",
        "json",
        "runner",
        "register",
        "--url",
        sim.url(),
        "--registration-token",
        REGISTRATION_TOKEN,
        "--name",
        "k8s",
    ])
    .await
    .without(REGISTRATION_TOKEN);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let entry: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let runner = sim.runners().pop().unwrap();
    assert_eq!(entry["id"], runner.id);
    assert_eq!(entry["token"], runner.token);
    assert_eq!(entry["name"], "k8s");
    assert_eq!(entry["executor"], "kubernetes");
    assert_eq!(entry["token_expires_at"], serde_json::Value::Null);
    assert!(runner.run_untagged, "no tags: untagged jobs");
    assert_eq!(runner.description, "k8s", "described by its name");
}

#[tokio::test]
async fn created_runner_verify_and_unregister_its_manager() {
    let sim = sim(None).await;
    let url = sim.url().to_owned();
    let dir = data_dir();

    // `register --token glrt-…` only verifies, as the coordinator's runner manager.
    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        &url,
        "--token",
        CREATED_TOKEN,
        "--name",
        "k8s",
        "--data-dir",
        path(dir.path()),
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(CREATED_TOKEN));
    let entry = load_entry(&run.stdout);
    assert_eq!(entry.id, 1);
    assert_eq!(entry.token.expose(), CREATED_TOKEN);
    let runner = sim.runner(1).unwrap();
    assert_eq!(runner.managers.iter().collect::<Vec<_>>(), [SYSTEM_ID]);

    let run = fleetctl(&[
        "--output",
        "json",
        "runner",
        "verify",
        "--url",
        &url,
        "--token",
        CREATED_TOKEN,
        "--system-id",
        SYSTEM_ID,
    ])
    .await
    .without(CREATED_TOKEN);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let verified: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        verified,
        serde_json::json!({"valid": true, "id": 1, "token_expires_at": null})
    );

    // A glrt- token needs to know which manager to delete.
    let run = fleetctl(&["runner", "unregister", "--url", &url, "--token", CREATED_TOKEN])
        .await
        .without(CREATED_TOKEN);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--system-id or --data-dir"), "{}", run.stderr);
    let empty = tempfile::tempdir().unwrap();
    let run = fleetctl(&[
        "runner",
        "unregister",
        "--url",
        &url,
        "--token",
        CREATED_TOKEN,
        "--data-dir",
        path(empty.path()),
    ])
    .await
    .without(CREATED_TOKEN);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(".runner_system_id does not exist"),
        "{}",
        run.stderr
    );
    assert!(
        !empty.path().join(".runner_system_id").exists(),
        "fleetctl never writes it"
    );

    let run = fleetctl(&[
        "runner",
        "unregister",
        "--url",
        &url,
        "--token",
        CREATED_TOKEN,
        "--data-dir",
        path(dir.path()),
    ])
    .await
    .without(CREATED_TOKEN);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("deleted runner manager s_0123456789ab;"),
        "{}",
        run.stdout
    );
    let runner = sim.runner(1).expect("the runner itself stays in GitLab");
    assert!(runner.managers.is_empty());

    let run = fleetctl(&[
        "runner",
        "unregister",
        "--url",
        &url,
        "--token",
        CREATED_TOKEN,
        "--system-id",
        SYSTEM_ID,
    ])
    .await
    .without(CREATED_TOKEN);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("GitLab has no runner manager s_0123456789ab"),
        "{}",
        run.stderr
    );
    let run = fleetctl(&["runner", "verify", "--url", &url, "--token", CREATED_TOKEN]).await;
    assert_eq!(run.code, 0, "the token still works: {}", run.stderr);
}

#[tokio::test]
async fn created_runner_settings_are_refused_before_calling_gitlab() {
    let sim = sim(None).await;
    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        sim.url(),
        "--token",
        CREATED_TOKEN,
        "--tag-list",
        "k8s-default",
        "--locked=false",
    ])
    .await
    .without(CREATED_TOKEN);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--tag-list, --locked cannot be used with --token"),
        "{}",
        run.stderr
    );
    assert!(sim.runner(1).unwrap().managers.is_empty(), "GitLab was not contacted");
}

#[tokio::test]
async fn glrt_token_given_as_registration_token_is_verified_instead() {
    // What gitlab-runner calls the legacy-compatible registration.
    let sim = sim(Some(REGISTRATION_TOKEN)).await;
    let run = fleetctl(&[
        "runner",
        "register",
        "--url",
        sim.url(),
        "--registration-token",
        CREATED_TOKEN,
        "--tag-list",
        "ignored",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("verifying it instead of registering"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ignoring --tag-list"), "{}", run.stderr);
    assert_eq!(load_entry(&run.stdout).id, 1);
    assert_eq!(sim.runners().len(), 1, "nothing was registered");
    assert_eq!(
        sim.runner(1).unwrap().managers.iter().collect::<Vec<_>>(),
        ["<legacy>"],
        "no system id given: GitLab's legacy manager"
    );
}

/// The seeds' "KUBERNETES_SERVICE_ACCOUNT environment variable or --kubernetes-service-account
/// flag" (and the older `--service-account`): the printed entry's `[runners.kubernetes]
/// service_account`; the flag wins over the variable.
#[tokio::test]
async fn the_service_account_from_the_environment_or_a_flag() {
    let sim = sim(None).await;
    let register = ["runner", "register", "--url", sim.url(), "--token", CREATED_TOKEN];
    let run = fleetctl_with_env(&register, &[("KUBERNETES_SERVICE_ACCOUNT", "from-env")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        load_entry(&run.stdout).kubernetes.service_account.as_deref(),
        Some("from-env")
    );
    for flag in ["--kubernetes-service-account", "--service-account"] {
        let mut args = register.to_vec();
        args.extend([flag, "from-flag"]);
        let run = fleetctl_with_env(&args, &[("KUBERNETES_SERVICE_ACCOUNT", "from-env")]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            load_entry(&run.stdout).kubernetes.service_account.as_deref(),
            Some("from-flag"),
            "{flag}"
        );
    }
    let run = fleetctl(&register).await;
    assert_eq!(load_entry(&run.stdout).kubernetes.service_account, None);
}

#[tokio::test]
async fn unreachable_gitlab_exits_3() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let run = fleetctl(&["runner", "verify", "--url", &url, "--token", CREATED_TOKEN])
        .await
        .without(CREATED_TOKEN);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .starts_with(&format!("fleetctl: cannot reach GitLab at {url}:")),
        "{}",
        run.stderr
    );

    let run = fleetctl(&[
        "runner",
        "verify",
        "--url",
        "gitlab.example.com",
        "--token",
        CREATED_TOKEN,
    ])
    .await;
    assert_eq!(run.code, 2, "a URL without a scheme is a usage error: {}", run.stderr);
}
