//! Shared helpers for kube-sim's integration tests: a running sim with its kubeconfig,
//! and a kube-rs client for it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use kube_sim::{Sim, SimConfig};

pub struct TestCluster {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub async fn start() -> TestCluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let sim = Sim::start(SimConfig {
        name: "test".into(),
        kubeconfig: Some(kubeconfig.clone()),
        ..SimConfig::default()
    })
    .await
    .expect("kube-sim starts");
    TestCluster { sim, dir, kubeconfig }
}

impl TestCluster {
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }
}

/// A kube-rs client configured by exactly the kubeconfig kube-sim wrote.
pub async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    kube::Client::try_from(config_for(kubeconfig).await).expect("client")
}

pub async fn config_for(kubeconfig: &std::path::Path) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig is usable")
}

/// Bounds a wait that should end quickly; reaching the bound fails the test.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
