//! The worker: one per cluster. It takes jobs from the coordinator, runs each as a Pod (one
//! pod actor per job), follows the job log to the log-shipper and reports the result.

pub mod affinity;
pub mod allowed;
pub mod api_retry;
pub mod book;
pub mod job_runner;
pub mod job_variables;
pub mod kube_connect;
pub mod link;
pub mod log_entries;
pub mod overwrites;
pub mod plan;
pub mod pod;
pub mod pod_settings;
pub mod pod_start;
pub mod render;
pub mod run;
pub mod services;
pub mod settings;
pub mod trace_upload;
pub mod volumes;

/// What the worker's unit tests share.
#[cfg(test)]
mod test_support {
    /// The `[runners.kubernetes]` of a runner entry with `text` in that table, loaded as the
    /// coordinator loads `config.toml`.
    pub fn kube(text: &str) -> flotilla_config::KubernetesConfig {
        let file = format!(
            "[[runners]]\nurl = \"https://g.example.com\"\ntoken = \"t\"\nexecutor = \"kubernetes\"\n[runners.kubernetes]\n{text}"
        );
        let loaded = flotilla_config::runner_config_from_str(&file).expect("the test config loads");
        loaded.config.runners[0].kubernetes.clone()
    }
}
