//! `kube-sim`: runs a simulated Kubernetes cluster (API server plus a node that runs Pods
//! as local processes) until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use kube_sim::{Sim, SimConfig};

/// A Kubernetes API server stand-in that really runs Pods as local processes, for
/// developing and testing Flotilla without a cluster. kubectl and kube-rs work against it
/// through the kubeconfig it writes.
#[derive(Parser, Debug)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Address to serve the API on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig here once the server accepts connections.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Cluster name, used in the kubeconfig.
    #[arg(long, default_value = "kube-sim")]
    name: String,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// Accept requests without a token or client certificate.
    #[arg(long)]
    anonymous: bool,
    /// Directory for Pods' volumes and logs (default: a temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Label of the simulated node, KEY=VALUE (repeatable); nodeSelector matches these.
    #[arg(long = "node-label", value_name = "KEY=VALUE")]
    node_labels: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "kube_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut node_labels = BTreeMap::new();
    for label in &args.node_labels {
        let Some((k, v)) = label.split_once('=') else {
            bail!("--node-label {label:?}: expected KEY=VALUE");
        };
        node_labels.insert(k.to_string(), v.to_string());
    }
    let config = SimConfig {
        name: args.name.clone(),
        listen: args.listen,
        tls: !args.http,
        anonymous: args.anonymous,
        data_dir: args.data_dir.clone(),
        kubeconfig: Some(args.kubeconfig.clone()),
        node_labels,
        ..SimConfig::default()
    };
    let sim = Sim::start(config).await.context("starting kube-sim")?;
    println!(
        "kube-sim {} serving {} (kubeconfig {})",
        args.name,
        sim.url(),
        args.kubeconfig.display()
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping: killing every container");
    sim.stop();
    Ok(())
}
