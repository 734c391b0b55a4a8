//! Mutual TLS on every gRPC connection of the fleet (worker → coordinator, worker →
//! log-shipper, log-shipper → coordinator, admin), and what happens to clients without the
//! right credentials: they are refused before any token is looked at.

use std::time::Duration;

use flotilla_e2e::{start_with_tls, status_until, Pki};
use flotilla_proto::admin_client::AdminClient;
use flotilla_proto::transport::{client_tls, dial};
use flotilla_proto::StatusRequest;
use gitlab_sim::{GitlabSim, JobSpec, JobState, SimConfig};

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_on_mutual_tls_runs_jobs() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::generate(certs.path());
    let sim = GitlabSim::start(SimConfig {
        long_poll: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let token = sim.runner_tokens()[0].clone();
    let fleet = start_with_tls(sim.url(), &token, 1, 1, Some(&pki)).await;
    assert!(fleet.coordinator_url.starts_with("https://"));
    let id = sim
        .add_job(JobSpec::new("over-tls", ["echo sent-over-tls"]).variable("GIT_STRATEGY", "none"))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), sim.wait_all_finished())
        .await
        .expect("the job ends");
    let job = sim.job(id).unwrap();
    assert_eq!(job.state, JobState::Success, "{}", job.trace_text());
    assert!(job.trace_text().contains("\nsent-over-tls\n"));
    assert_eq!(job.checksum_matched, Some(true));
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(status.workers.len(), 1, "the worker registered over mutual TLS");
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_without_a_certificate_or_tls_are_refused() {
    let certs = tempfile::tempdir().unwrap();
    let pki = Pki::generate(certs.path());
    let fleet = start_with_tls("http://127.0.0.1:9", "unused", 0, 1, Some(&pki)).await;

    // Trusts the server but has no client certificate: the handshake or the first call fails.
    let anonymous = client_tls(Some(&pki.ca), None).unwrap();
    let refused = match dial(&fleet.admin_url, Some(&anonymous)).await {
        Err(_) => true,
        Ok(channel) => AdminClient::new(channel).status(StatusRequest {}).await.is_err(),
    };
    assert!(refused, "a client without a certificate is refused");

    // Plain HTTP/2 to a TLS listener gets nowhere either.
    let plain = fleet.admin_url.replace("https://", "http://");
    let refused = match dial(&plain, None).await {
        Err(_) => true,
        Ok(channel) => AdminClient::new(channel).status(StatusRequest {}).await.is_err(),
    };
    assert!(refused, "plain HTTP is refused");

    // With the client certificate the call reaches the service, which then wants its token.
    let channel = dial(&fleet.admin_url, fleet.client_tls.as_ref()).await.unwrap();
    let status = AdminClient::new(channel).status(StatusRequest {}).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}
