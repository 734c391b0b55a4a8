//! Benchmark: how fast kube-sim takes a Pod whose container is `true` from create to
//! Succeeded, one at a time (latency) and hundreds at once (throughput on 2 cores).
//! Run with `make bench`; prints median/p95 latency and pods per second.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube_sim::{Sim, SimConfig};

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    }))
    .unwrap()
}

fn succeeded(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
}

/// Creates `count` pods at once and returns each one's create→Succeeded time.
async fn run(api: &Api<Pod>, prefix: &str, count: usize) -> (Vec<Duration>, Duration) {
    let mut stream = watcher(api.clone(), watcher::Config::default().labels("bench=yes")).boxed();
    // Let the watcher finish its initial list first.
    while let Some(Ok(event)) = stream.next().await {
        if matches!(event, watcher::Event::InitDone) {
            break;
        }
    }
    let start = Instant::now();
    let created_at = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    // Create concurrently while this task consumes the watch, so latencies are real.
    let creates: Vec<_> = (0..count)
        .map(|i| {
            let api = api.clone();
            let created_at = created_at.clone();
            let name = format!("{prefix}-{i}");
            tokio::spawn(async move {
                created_at.lock().unwrap().insert(name.clone(), Instant::now());
                api.create(&PostParams::default(), &pod(&name)).await.expect("create");
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut done = std::collections::HashSet::new();
    while done.len() < count {
        let Some(Ok(watcher::Event::Apply(p))) = stream.next().await else {
            continue;
        };
        let name = p.metadata.name.clone().unwrap_or_default();
        let started = created_at.lock().unwrap().get(&name).copied();
        if let Some(started) = started.filter(|_| succeeded(&p)) {
            if done.insert(name) {
                latencies.push(started.elapsed());
            }
        }
    }
    futures::future::join_all(creates).await;
    (latencies, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let _sim = Sim::start(SimConfig {
            kubeconfig: Some(kubeconfig.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        let api: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).unwrap());

        let mut sequential = Vec::new();
        for i in 0..20 {
            let (mut l, _) = run(&api, &format!("seq{i}"), 1).await;
            sequential.append(&mut l);
        }
        sequential.sort();
        println!(
            "single pod create->Succeeded: median {:?}, p95 {:?} (n={})",
            percentile(&sequential, 0.5),
            percentile(&sequential, 0.95),
            sequential.len()
        );
        for count in [100, 300] {
            let (mut latencies, total) = run(&api, &format!("burst{count}"), count).await;
            latencies.sort();
            println!(
                "{count} concurrent pods: all Succeeded in {total:?} ({:.0} pods/s), latency median {:?}, p95 {:?}",
                count as f64 / total.as_secs_f64(),
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.95)
            );
        }
    });
}
