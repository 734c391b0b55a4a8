//! `fleetctl runner register | verify | unregister`: a runner's life on the GitLab side.
//!
//! Unlike the rest of fleetctl, these commands talk to GitLab's runner API (through
//! `flotilla-gitlab`), not to the coordinator. They create or check the runner whose token goes
//! into a `[[runners]]` entry of the coordinator's `config.toml`, and delete it (or only the
//! fleet's runner manager) when the fleet stops using it — what `gitlab-runner register`, `verify`
//! and `unregister` do for the official runner. Exit codes are fleetctl's: 0 done, 1 GitLab
//! refused (or answered something unusable), 2 usage, 3 GitLab unreachable.
//!
//! A token is printed in one place only: the entry `register` prints for `config.toml`.
//! Submodules: [`args`] is the command line, [`failure`] the errors and their exit codes,
//! [`entry`] renders the entry, [`system`] finds the coordinator's `system_id`.

mod args;
mod entry;
mod failure;
mod system;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use flotilla_gitlab::{
    is_created_runner_token, ClientOptions, RegisterParams, Registration, RunnerClient, Secret, Unregistration,
    Verification,
};
use serde_json::json;

pub use args::RunnerCommand;
pub use failure::RunnerFailure;

use crate::Output;
use args::{GitlabArgs, RegisterArgs};
use entry::RunnerEntry;
use system::SystemIdArgs;

/// Runs a command and reports its failure on stderr; returns fleetctl's exit code.
pub async fn main(command: &RunnerCommand, output: Output) -> i32 {
    match run(command, output).await {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("fleetctl: {failure}");
            if let RunnerFailure::Refused { hint: Some(hint), .. } = &failure {
                eprintln!("hint: {hint}");
            }
            failure.exit_code()
        }
    }
}

/// Runs a command. Results go to stdout (the entry, or JSON), progress and warnings to stderr.
pub async fn run(command: &RunnerCommand, output: Output) -> Result<(), RunnerFailure> {
    match command {
        RunnerCommand::Register(args) => register_command(args, output).await,
        RunnerCommand::Verify { gitlab, token, system } => {
            verify(gitlab, Secret::new(token.as_str()), system, output).await
        }
        RunnerCommand::Unregister { gitlab, token, system } => {
            unregister(gitlab, Secret::new(token.as_str()), system, output).await
        }
    }
}

/// `register`: a legacy registration, or the check of an existing runner's token; prints the
/// runner's entry with the local settings given (`--kubernetes-service-account`).
async fn register_command(args: &RegisterArgs, output: Output) -> Result<(), RunnerFailure> {
    let mut entry = registered_entry(args).await?;
    entry.service_account = args.kubernetes_service_account.clone();
    print_entry(&entry, output);
    Ok(())
}

async fn registered_entry(args: &RegisterArgs) -> Result<RunnerEntry, RunnerFailure> {
    let name = args.name.clone().unwrap_or_else(hostname);
    let given = args.settings.given();
    match (&args.registration_token, &args.token) {
        (Some(registration_token), None) => {
            let registration_token = Secret::new(registration_token.as_str());
            // The official runner's "legacy-compatible registration": a runner token passed as a
            // registration token is verified instead, and the settings are ignored.
            if is_created_runner_token(&registration_token) {
                eprintln!(
                    "fleetctl: --registration-token holds a runner authentication token (glrt-): \
                     verifying it instead of registering"
                );
                if !given.is_empty() {
                    eprintln!(
                        "fleetctl: ignoring {}: this runner's settings are kept in GitLab",
                        given.join(", ")
                    );
                }
                return existing(&args.gitlab, registration_token, name, &args.system).await;
            }
            if args.system.given() {
                return Err(RunnerFailure::Usage(
                    "--system-id and --data-dir name a runner manager; a registration creates a runner, not a manager"
                        .into(),
                ));
            }
            let params = args.settings.params(&name);
            register(&args.gitlab, registration_token, &params, name).await
        }
        (None, Some(token)) => {
            if !given.is_empty() {
                return Err(RunnerFailure::Usage(format!(
                    "{} cannot be used with --token: an existing runner's settings are kept in GitLab; change them there",
                    given.join(", ")
                )));
            }
            existing(&args.gitlab, Secret::new(token.as_str()), name, &args.system).await
        }
        // clap's argument group admits exactly one of the two.
        _ => Err(RunnerFailure::Usage(
            "pass either --registration-token or --token".into(),
        )),
    }
}

/// A client for a command-line call: the official retry layer, but timeouts for a person
/// waiting rather than for long polls.
fn client(gitlab: &GitlabArgs) -> Result<RunnerClient, RunnerFailure> {
    let tls_ca_pem = match &gitlab.tls_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| RunnerFailure::Usage(format!("reading --tls-ca-file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let options = ClientOptions {
        read_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(120),
        tls_ca_pem,
        ..ClientOptions::default()
    };
    RunnerClient::with_options(&gitlab.url, options).map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))
}

/// Now, to the second, as the official runner records `token_obtained_at`.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Legacy registration: GitLab creates a runner and hands out its token once.
async fn register(
    gitlab: &GitlabArgs,
    registration_token: Secret,
    params: &RegisterParams,
    name: String,
) -> Result<RunnerEntry, RunnerFailure> {
    let client = client(gitlab)?;
    let outcome = client
        .register(&registration_token, params)
        .await
        .map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))?;
    match outcome {
        Registration::Registered(credentials) => {
            eprintln!(
                "fleetctl: GitLab registered runner {}; add this entry to the coordinator's config.toml (it holds the runner's token, which GitLab will not show again)",
                credentials.id
            );
            Ok(RunnerEntry {
                name,
                url: gitlab.url.clone(),
                id: Some(credentials.id),
                token: credentials.token,
                token_obtained_at: now(),
                token_expires_at: credentials.token_expires_at,
                service_account: None,
            })
        }
        Registration::Forbidden => Err(RunnerFailure::refused(
            "GitLab refused the registration token",
            Some("copy it again from GitLab's runner settings (Admin, group or project > CI/CD > Runners)"),
        )),
    }
}

/// An existing runner's token: verified, as `gitlab-runner register --token` does; its entry.
async fn existing(
    gitlab: &GitlabArgs,
    token: Secret,
    name: String,
    system: &SystemIdArgs,
) -> Result<RunnerEntry, RunnerFailure> {
    let system_id = system.resolve()?;
    let client = client(gitlab)?;
    let outcome = client
        .verify(&token, system_id.as_ref())
        .await
        .map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))?;
    let details = match outcome {
        Verification::Valid(details) => details,
        Verification::Invalid => return Err(invalid_token()),
    };
    // The official runner insists on a runner id for glrt- tokens; legacy tokens verified by an
    // old GitLab may come without one.
    if details.is_none() && is_created_runner_token(&token) {
        return Err(RunnerFailure::refused(
            "GitLab accepted the token but did not say which runner it belongs to",
            None,
        ));
    }
    let id = details.as_ref().map(|d| d.id);
    match id {
        Some(id) => eprintln!("fleetctl: GitLab knows runner {id}; add this entry to the coordinator's config.toml"),
        None => eprintln!("fleetctl: GitLab accepted the token; add this entry to the coordinator's config.toml"),
    }
    Ok(RunnerEntry {
        name,
        url: gitlab.url.clone(),
        id,
        token,
        token_obtained_at: now(),
        token_expires_at: details.and_then(|d| d.token_expires_at),
        service_account: None,
    })
}

fn print_entry(entry: &RunnerEntry, output: Output) {
    match output {
        Output::Table => print!("{}", entry.toml()),
        Output::Json => print!("{}", entry.json()),
    }
}

fn invalid_token() -> RunnerFailure {
    RunnerFailure::refused(
        "GitLab does not know this runner token",
        Some("the runner may have been deleted or its token reset; copy the token again from GitLab's runner page"),
    )
}

/// `verify`: only asks.
async fn verify(
    gitlab: &GitlabArgs,
    token: Secret,
    system: &SystemIdArgs,
    output: Output,
) -> Result<(), RunnerFailure> {
    let system_id = system.resolve()?;
    let client = client(gitlab)?;
    let outcome = client
        .verify(&token, system_id.as_ref())
        .await
        .map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))?;
    let details = match outcome {
        Verification::Valid(details) => details,
        Verification::Invalid => {
            if let Output::Json = output {
                println!("{}", json!({"valid": false}));
            }
            return Err(invalid_token());
        }
    };
    let id = details.as_ref().map(|d| d.id);
    let expires = details
        .and_then(|d| d.token_expires_at)
        .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    match output {
        Output::Json => println!("{}", json!({"valid": true, "id": id, "token_expires_at": expires})),
        Output::Table => {
            let runner = id.map_or_else(|| "the token".to_owned(), |id| format!("runner {id}"));
            let expiry = expires.map_or_else(|| "does not expire".to_owned(), |at| format!("expires at {at}"));
            println!("valid: GitLab knows {runner}; the token {expiry}");
        }
    }
    Ok(())
}

/// `unregister`: deletes a legacy token's runner, or only the coordinator's manager of a
/// `glrt-` runner (what the official runner does, so a runner created in GitLab is never
/// deleted from the command line).
async fn unregister(
    gitlab: &GitlabArgs,
    token: Secret,
    system: &SystemIdArgs,
    output: Output,
) -> Result<(), RunnerFailure> {
    if is_created_runner_token(&token) {
        let Some(system_id) = system.resolve()? else {
            return Err(RunnerFailure::Usage(
                "a glrt- token's runner stays in GitLab; only its runner manager is unregistered: \
                 name it with --system-id or --data-dir (the coordinator's data_dir)"
                    .into(),
            ));
        };
        let client = client(gitlab)?;
        let outcome = client
            .unregister_manager(&token, &system_id)
            .await
            .map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))?;
        return match outcome {
            Unregistration::Deleted => {
                match output {
                    Output::Json => println!("{}", json!({"deleted": "runner_manager", "system_id": system_id.as_str()})),
                    Output::Table => println!(
                        "deleted runner manager {system_id}; the runner stays in GitLab (delete it there once no manager uses it)"
                    ),
                }
                Ok(())
            }
            Unregistration::Forbidden => Err(invalid_token()),
            Unregistration::ManagerNotFound => Err(RunnerFailure::refused(
                format!("GitLab has no runner manager {system_id} for this runner"),
                Some("it was already unregistered, or this system never contacted GitLab with the token"),
            )),
        };
    }
    if system.given() {
        eprintln!("fleetctl: ignoring --system-id/--data-dir: unregistering a registered runner deletes it with all its managers");
    }
    let client = client(gitlab)?;
    let outcome = client
        .unregister(&token)
        .await
        .map_err(|e| RunnerFailure::from_gitlab(&gitlab.url, e))?;
    match outcome {
        Unregistration::Deleted => {
            match output {
                Output::Json => println!("{}", json!({"deleted": "runner"})),
                Output::Table => {
                    println!("deleted the runner from GitLab; remove its [[runners]] entry from config.toml")
                }
            }
            Ok(())
        }
        Unregistration::Forbidden | Unregistration::ManagerNotFound => Err(RunnerFailure::refused(
            "GitLab does not know this runner token",
            Some("it may already be unregistered"),
        )),
    }
}

/// This host's name, the official default for a runner's name.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "flotilla".to_owned())
}
