//! Where the fleet runs jobs (issue 4): label routing from a job's
//! `FLOTILLA_CLUSTER_SELECTOR`, a job no cluster can take failing fast with the reason in its
//! log, cordon/drain from the admin API, and overflow pools (QA clusters) that take work only
//! when production is full and the job has waited, or at once when an operator forces it.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_coordinator::fleet::OverflowPool;
use flotilla_e2e::gitlab::{all_finished, gitlab};
use flotilla_e2e::{start_fleet, status_until, ClusterSpec, Fleet, FleetSpec};
use flotilla_proto::{cordon_request, CordonRequest, JobStatus, OverflowRequest, StatusReply};
use gitlab_sim::{GitlabSim, JobSpec, JobState};

fn job(name: &str, script: &[&str]) -> JobSpec {
    JobSpec::new(name, script.iter().copied()).variable("GIT_STRATEGY", "none")
}

fn by_id(status: &StatusReply, id: u64) -> &JobStatus {
    status
        .jobs
        .iter()
        .find(|j| j.job_id == id)
        .expect("the coordinator knows the job")
}

async fn fleet_of(sim: &GitlabSim, clusters: Vec<ClusterSpec>, edit: impl FnOnce(&mut FleetSpec)) -> Fleet {
    let mut spec = FleetSpec::new(sim.url(), &sim.runner_tokens()[0], 0, 1);
    spec.clusters = clusters;
    edit(&mut spec);
    let count = spec.clusters.len();
    let fleet = start_fleet(spec).await;
    status_until(&fleet, |s| s.workers.len() == count).await;
    fleet
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_go_where_their_labels_say_and_impossible_ones_fail_fast() {
    let sim = gitlab().await;
    let clusters = vec![
        ClusterSpec::new("cluster-a", 3).label("arch", "amd64"),
        ClusterSpec::new("cluster-b", 3).label("arch", "arm64"),
    ];
    let fleet = fleet_of(&sim, clusters, |_| {}).await;
    let arm: Vec<u64> = (0..3)
        .map(|n| {
            sim.add_job(job(&format!("arm-{n}"), &["echo on arm"]).variable("FLOTILLA_CLUSTER_SELECTOR", "arch=arm64"))
                .unwrap()
        })
        .collect();
    let by_name = sim
        .add_job(job("by-name", &["echo on a"]).variable("FLOTILLA_CLUSTER_SELECTOR", "cluster=cluster-a"))
        .unwrap();
    let gpu = sim
        .add_job(job("gpu", &["echo never runs"]).variable("FLOTILLA_CLUSTER_SELECTOR", "gpu=a100"))
        .unwrap();
    let malformed = sim
        .add_job(job("malformed", &["echo never runs"]).variable("FLOTILLA_CLUSTER_SELECTOR", "arch=arm 64"))
        .unwrap();
    all_finished(&sim).await;

    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    for id in &arm {
        assert_eq!(sim.job(*id).unwrap().state, JobState::Success);
        assert_eq!(
            by_id(&status, *id).cluster,
            "cluster-b",
            "arch=arm64 runs on cluster-b only"
        );
    }
    assert_eq!(by_id(&status, by_name).cluster, "cluster-a");

    let gpu = sim.job(gpu).unwrap();
    assert_eq!(gpu.state, JobState::Failed);
    assert_eq!(gpu.failure_reason.as_deref(), Some("runner_system_failure"));
    let trace = gpu.trace_text();
    assert!(
        trace.contains("no worker in the fleet has cluster labels matching"),
        "{trace}"
    );
    assert!(
        trace.contains("gpu=a100") && trace.contains("cluster-b (arch=arm64)"),
        "{trace}"
    );
    assert!(!trace.contains("never runs"));
    assert_eq!(gpu.checksum_matched, Some(true));

    let malformed = sim.job(malformed).unwrap();
    assert_eq!(malformed.state, JobState::Failed);
    assert!(
        malformed
            .trace_text()
            .contains("FLOTILLA_CLUSTER_SELECTOR \"arch=arm 64\": \"arm 64\" is not a label value"),
        "{}",
        malformed.trace_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_cluster_gets_no_new_jobs_until_uncordoned() {
    let sim = gitlab().await;
    let fleet = fleet_of(
        &sim,
        vec![ClusterSpec::new("cluster-a", 2), ClusterSpec::new("cluster-b", 2)],
        |_| {},
    )
    .await;
    let mut admin = fleet.admin().await;
    let drain = |action: &str| CordonRequest {
        target: Some(cordon_request::Target::Cluster("cluster-a".into())),
        action: action.into(),
    };
    let reply = admin.cordon(drain("drain")).await.unwrap().into_inner();
    assert_eq!(reply.workers, ["worker-cluster-a"]);
    let status = status_until(&fleet, |_| true).await;
    let a = status.workers.iter().find(|w| w.cluster == "cluster-a").unwrap();
    assert_eq!(a.state, "drained", "nothing runs there");

    let drained: Vec<u64> = (0..4)
        .map(|n| sim.add_job(job(&format!("while-drained-{n}"), &["echo hi"])).unwrap())
        .collect();
    all_finished(&sim).await;
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    let clusters: BTreeSet<&str> = drained.iter().map(|id| by_id(&status, *id).cluster.as_str()).collect();
    assert_eq!(clusters, BTreeSet::from(["cluster-b"]));

    admin.cordon(drain("uncordon")).await.unwrap();
    // Four jobs for four slots: cluster-a's two are needed.
    let after: Vec<u64> = (0..4)
        .map(|n| sim.add_job(job(&format!("after-{n}"), &["sleep 1"])).unwrap())
        .collect();
    all_finished(&sim).await;
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert!(
        after.iter().any(|id| by_id(&status, *id).cluster == "cluster-a"),
        "uncordoned cluster-a takes work again: {:?}",
        status.jobs
    );
}

fn overflow_fleet_spec(after: Duration) -> impl FnOnce(&mut FleetSpec) {
    move |spec| {
        spec.overflow_pools = vec![OverflowPool {
            name: "qa".into(),
            after: Some(after),
        }];
    }
}

fn production_and_qa() -> Vec<ClusterSpec> {
    vec![ClusterSpec::new("prod-a", 1), ClusterSpec::new("qa-a", 2).pool("qa")]
}

#[tokio::test(flavor = "multi_thread")]
async fn overflow_takes_a_job_only_when_production_is_full_and_it_has_waited() {
    let sim = gitlab().await;
    let fleet = fleet_of(&sim, production_and_qa(), overflow_fleet_spec(Duration::from_secs(1))).await;

    // Production has room: the QA cluster gets nothing.
    let first = sim.add_job(job("first", &["echo prod"])).unwrap();
    all_finished(&sim).await;
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(by_id(&status, first).cluster, "prod-a");

    // Production busy: the next job waits out the threshold, then overflows to QA.
    let busy = sim.add_job(job("busy", &["sleep 4"])).unwrap();
    status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == busy && j.state == "running")
    })
    .await;
    let spill = sim.add_job(job("spill", &["echo overflowed"])).unwrap();
    let status = status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == spill && j.state == "done")
    })
    .await;
    let spilled = by_id(&status, spill);
    assert_eq!(spilled.cluster, "qa-a");
    assert_eq!(
        by_id(&status, busy).state,
        "running",
        "it overflowed while production was still busy"
    );
    let metrics = reqwest::get(fleet.metrics_url.as_deref().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "flotilla_jobs_assigned_total{cluster=\"qa-a\",pool=\"qa\",overflow=\"true\"} 1",
        "flotilla_jobs_assigned_total{cluster=\"prod-a\",pool=\"prod\",overflow=\"false\"} 2",
        "flotilla_overflow_mode{mode=\"auto\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in /metrics:\n{metrics}");
    }
    assert_eq!(sim.job(spill).unwrap().state, JobState::Success);
    all_finished(&sim).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_forces_overflow_on_and_switches_it_off() {
    let sim = gitlab().await;
    // A threshold no test waits for: whatever reaches QA here was sent by the switch.
    let fleet = fleet_of(&sim, production_and_qa(), overflow_fleet_spec(Duration::from_secs(600))).await;
    let mut admin = fleet.admin().await;
    let set = |mode: &str| {
        let request = OverflowRequest { set_mode: mode.into() };
        let mut admin = admin.clone();
        async move { admin.overflow(request).await.unwrap().into_inner() }
    };

    // On: with production busy, a job goes to QA at once.
    assert_eq!(set("on").await.mode, "on");
    let busy = sim.add_job(job("busy", &["sleep 3"])).unwrap();
    status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == busy && j.state == "running")
    })
    .await;
    let forced = sim.add_job(job("forced", &["sleep 2", "echo finished-on-qa"])).unwrap();
    let status = status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == forced && j.state == "running")
    })
    .await;
    assert_eq!(by_id(&status, forced).cluster, "qa-a");
    assert_eq!(by_id(&status, busy).state, "running", "production was still busy");

    // Off: QA takes nothing new, although it has room; its running job finishes.
    let reply = set("off").await;
    assert_eq!((reply.mode.as_str(), reply.workers.len()), ("off", 1));
    let after = sim.add_job(job("after", &["echo waited-for-production"])).unwrap();
    all_finished(&sim).await;
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    assert_eq!(
        by_id(&status, after).cluster,
        "prod-a",
        "overflow off: it waited for production"
    );
    assert_eq!(status.overflow_mode, "off");
    let forced = sim.job(forced).unwrap();
    assert_eq!(forced.state, JobState::Success);
    assert!(forced.trace_text().contains("\nfinished-on-qa\n"));

    // An operator's cancel stops a running job on its worker.
    let long = sim.add_job(job("long", &["echo started", "sleep 120"])).unwrap();
    status_until(&fleet, |s| {
        s.jobs.iter().any(|j| j.job_id == long && j.state == "running")
    })
    .await;
    let reply = admin
        .cancel_job(flotilla_proto::CancelJobRequest {
            job_id: long,
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.state, "running",
        "the worker is told; the job ends when it has stopped"
    );
    all_finished(&sim).await;
    assert_eq!(sim.job(long).unwrap().state, JobState::Failed);
    let refused = admin
        .cancel_job(flotilla_proto::CancelJobRequest {
            job_id: long,
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_spread_over_clusters_by_capacity() {
    let sim = gitlab().await;
    let clusters = vec![ClusterSpec::new("small", 1), ClusterSpec::new("large", 3)];
    let fleet = fleet_of(&sim, clusters, |_| {}).await;
    // Twelve jobs of the same length for four slots: whenever a slot frees, the least loaded
    // worker (by share of its capacity) gets the next job, so the large cluster runs about
    // three times as many.
    let ids: Vec<u64> = (0..12)
        .map(|n| sim.add_job(job(&format!("even-{n}"), &["sleep 1"])).unwrap())
        .collect();
    all_finished(&sim).await;
    let status = status_until(&fleet, |s| s.jobs.iter().all(|j| j.state == "done")).await;
    let on_small = ids.iter().filter(|id| by_id(&status, **id).cluster == "small").count();
    // Expected 3 of 12; the tolerance allows for jobs not ending in lockstep.
    assert!(
        (2..=4).contains(&on_small),
        "small ran {on_small} of 12: {:?}",
        status.jobs
    );
}
