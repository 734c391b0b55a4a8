//! Flotilla's end-to-end tests, one module per scenario, linked into one test binary: each
//! links the whole fleet (coordinator, workers, log-shipper, kube-sim, GitLab stand-ins), and
//! one binary instead of one per file saves CI a gigabyte of disk and a dozen long links.
//! Run one scenario with `cargo test -p flotilla-e2e --test e2e <module>::`.

mod api_faults;
mod binaries;
mod coordinator_restart;
mod fleetctl;
mod job_pod_in_kube_sim;
mod job_to_gitlab;
mod overwrites;
mod pod_spec;
mod pod_start;
mod scheduling;
mod seed_examples;
mod services;
mod spine_with_gitlab_sim;
mod spine_with_runner_mock;
mod tls;
mod worker_loss;
