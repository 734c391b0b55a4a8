//! The fleet as the coordinator sees it: connected workers (cluster, pool, labels, capacity,
//! load), the operator's cordons and drains, the overflow switch, and where a job goes.
//!
//! Placement rules, in order:
//! - only workers whose labels satisfy the job's [`ClusterSelector`], never a cordoned,
//!   draining or full one;
//! - production pools first, least loaded by free share of capacity (ties: most free slots,
//!   then id, so the choice is deterministic);
//! - overflow pools (QA clusters) only when the switch is `on`, or, with the switch on
//!   `auto`, when no production worker can take the job now and the job has waited at least
//!   the pool's `overflow_after` (zero when unset); never when the switch is `off`;
//! - a job that no connected worker could ever take (no labels match, whatever the load) is
//!   [`Placement::Never`], so it can fail fast instead of waiting forever.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use flotilla_config::ClusterSelector;
use serde::{Deserialize, Serialize};

/// A connected worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub cluster: String,
    pub pool: String,
    pub labels: BTreeMap<String, String>,
    pub capacity: u32,
    /// Jobs the coordinator has on this worker (assigned or running).
    pub used: u32,
    /// Unix milliseconds.
    pub last_heartbeat_ms: i64,
}

impl WorkerInfo {
    /// The labels selectors see: the configured ones, plus `cluster` and `pool` unless set.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.entry("cluster".into()).or_insert_with(|| self.cluster.clone());
        labels.entry("pool".into()).or_insert_with(|| self.pool.clone());
        labels
    }
}

/// An overflow pool and when it takes jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowPool {
    pub name: String,
    /// How long a job waits for production before this pool may take it (None: no wait).
    pub after: Option<Duration>,
}

/// Which pools are overflow pools (every other pool is production).
#[derive(Debug, Clone, Default)]
pub struct PoolPolicy {
    pub overflow_pools: Vec<OverflowPool>,
}

impl PoolPolicy {
    pub fn overflow(&self, pool: &str) -> Option<&OverflowPool> {
        self.overflow_pools.iter().find(|p| p.name == pool)
    }

    pub fn is_overflow(&self, pool: &str) -> bool {
        self.overflow(pool).is_some()
    }
}

/// The operator's overflow switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowMode {
    /// Overflow pools take jobs production cannot, after their `overflow_after`.
    #[default]
    Auto,
    /// Overflow pools take jobs like production ones (production is still preferred).
    On,
    /// No new jobs go to overflow pools; their running jobs finish.
    Off,
}

impl OverflowMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowMode::Auto => "auto",
            OverflowMode::On => "on",
            OverflowMode::Off => "off",
        }
    }

    pub fn parse(text: &str) -> Option<OverflowMode> {
        match text {
            "auto" => Some(OverflowMode::Auto),
            "on" => Some(OverflowMode::On),
            "off" => Some(OverflowMode::Off),
            _ => None,
        }
    }
}

/// What an operator did to a worker or a whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cordon {
    /// No new jobs; running ones go on.
    Cordoned,
    /// No new jobs; the target is being emptied (shown as drained once nothing runs there).
    Draining,
}

/// Where a cordon applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CordonTarget {
    Worker(String),
    Cluster(String),
}

/// Where a job goes now.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement<'a> {
    Worker(&'a WorkerInfo),
    /// Some connected worker could take it later (when it has room, is uncordoned, or
    /// overflow opens): keep it queued.
    Wait,
    /// No connected worker's labels satisfy the job.
    Never,
}

/// What an operator decided about the fleet, kept across coordinator restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    pub overflow_mode: OverflowMode,
    pub cordons: Vec<(CordonTarget, Cordon)>,
}

#[derive(Debug, Default)]
pub struct Fleet {
    workers: HashMap<String, WorkerInfo>,
    pub policy: PoolPolicy,
    cordons: BTreeMap<CordonTarget, Cordon>,
    pub overflow_mode: OverflowMode,
}

impl Fleet {
    pub fn new(policy: PoolPolicy) -> Fleet {
        Fleet {
            policy,
            ..Fleet::default()
        }
    }

    pub fn upsert(&mut self, worker: WorkerInfo) {
        self.workers.insert(worker.worker_id.clone(), worker);
    }

    pub fn remove(&mut self, worker_id: &str) -> Option<WorkerInfo> {
        self.workers.remove(worker_id)
    }

    pub fn get(&self, worker_id: &str) -> Option<&WorkerInfo> {
        self.workers.get(worker_id)
    }

    pub fn get_mut(&mut self, worker_id: &str) -> Option<&mut WorkerInfo> {
        self.workers.get_mut(worker_id)
    }

    pub fn workers(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.values()
    }

    pub fn operator_state(&self) -> OperatorState {
        OperatorState {
            overflow_mode: self.overflow_mode,
            cordons: self.cordons.iter().map(|(t, c)| (t.clone(), *c)).collect(),
        }
    }

    pub fn restore(&mut self, state: OperatorState) {
        self.overflow_mode = state.overflow_mode;
        self.cordons = state.cordons.into_iter().collect();
    }

    /// Cordons or drains a worker or a cluster (also one not connected yet: it applies when
    /// it comes). Returns the connected workers it now covers.
    pub fn cordon(&mut self, target: CordonTarget, kind: Cordon) -> Vec<String> {
        let covered = self.covered(&target);
        self.cordons.insert(target, kind);
        covered
    }

    /// Lifts a cordon or drain; returns the connected workers it covered.
    pub fn uncordon(&mut self, target: &CordonTarget) -> Vec<String> {
        self.cordons.remove(target);
        self.covered(target)
    }

    fn covered(&self, target: &CordonTarget) -> Vec<String> {
        let mut ids: Vec<String> = self
            .workers
            .values()
            .filter(|w| match target {
                CordonTarget::Worker(id) => &w.worker_id == id,
                CordonTarget::Cluster(cluster) => &w.cluster == cluster,
            })
            .map(|w| w.worker_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The strongest cordon on a worker, from itself or its cluster.
    pub fn cordon_of(&self, worker: &WorkerInfo) -> Option<Cordon> {
        let own = self.cordons.get(&CordonTarget::Worker(worker.worker_id.clone()));
        let cluster = self.cordons.get(&CordonTarget::Cluster(worker.cluster.clone()));
        match (own, cluster) {
            (Some(Cordon::Draining), _) | (_, Some(Cordon::Draining)) => Some(Cordon::Draining),
            (Some(kind), _) | (None, Some(kind)) => Some(*kind),
            (None, None) => None,
        }
    }

    /// A worker's state for people: `ready`, `cordoned`, `draining` or `drained`.
    pub fn state_of(&self, worker: &WorkerInfo) -> &'static str {
        match self.cordon_of(worker) {
            None => "ready",
            Some(Cordon::Cordoned) => "cordoned",
            Some(Cordon::Draining) if worker.used > 0 => "draining",
            Some(Cordon::Draining) => "drained",
        }
    }

    /// Slots a worker offers to new jobs now.
    pub fn free(&self, worker: &WorkerInfo) -> u32 {
        if self.cordon_of(worker).is_some() {
            0
        } else {
            worker.capacity.saturating_sub(worker.used)
        }
    }

    /// Free slots the coordinator may fill from GitLab: production's, and overflow pools'
    /// unless the switch is off (in `auto`, a job taken for an overflow slot waits out the
    /// pool's `overflow_after` in the coordinator's queue, where production can still take it).
    pub fn free_slots(&self) -> u32 {
        self.workers
            .values()
            .filter(|w| self.overflow_mode != OverflowMode::Off || !self.policy.is_overflow(&w.pool))
            .map(|w| self.free(w))
            .sum()
    }

    /// Where a job with `selector` that has waited `waited` goes now.
    pub fn place(&self, selector: &ClusterSelector, waited: Duration) -> Placement<'_> {
        let eligible: Vec<&WorkerInfo> = self
            .workers
            .values()
            .filter(|w| selector.matches(&w.selector_labels()))
            .collect();
        if eligible.is_empty() {
            return Placement::Never;
        }
        let production = eligible.iter().copied().filter(|w| !self.policy.is_overflow(&w.pool));
        if let Some(worker) = self.least_loaded(production) {
            return Placement::Worker(worker);
        }
        let overflow_open = |w: &&WorkerInfo| match (self.overflow_mode, self.policy.overflow(&w.pool)) {
            (_, None) | (OverflowMode::Off, _) => false,
            (OverflowMode::On, Some(_)) => true,
            (OverflowMode::Auto, Some(pool)) => waited >= pool.after.unwrap_or_default(),
        };
        match self.least_loaded(eligible.iter().copied().filter(overflow_open)) {
            Some(worker) => Placement::Worker(worker),
            None => Placement::Wait,
        }
    }

    /// The worker with room and the largest free share of its capacity.
    fn least_loaded<'a>(&self, workers: impl Iterator<Item = &'a WorkerInfo>) -> Option<&'a WorkerInfo> {
        workers.filter(|w| self.free(w) > 0).max_by(|a, b| {
            let share = |w: &WorkerInfo| self.free(w) as f64 / w.capacity.max(1) as f64;
            share(a)
                .total_cmp(&share(b))
                .then(self.free(a).cmp(&self.free(b)))
                .then(b.worker_id.cmp(&a.worker_id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, pool: &str, capacity: u32, used: u32) -> WorkerInfo {
        WorkerInfo {
            worker_id: id.into(),
            cluster: format!("cluster-{id}"),
            pool: pool.into(),
            labels: BTreeMap::new(),
            capacity,
            used,
            last_heartbeat_ms: 0,
        }
    }

    fn fleet(workers: Vec<WorkerInfo>) -> Fleet {
        let mut fleet = Fleet::new(PoolPolicy {
            overflow_pools: vec![OverflowPool {
                name: "qa".into(),
                after: Some(Duration::from_secs(60)),
            }],
        });
        workers.into_iter().for_each(|w| fleet.upsert(w));
        fleet
    }

    fn any() -> ClusterSelector {
        ClusterSelector::default()
    }

    fn placed(fleet: &Fleet, selector: &ClusterSelector, waited_s: u64) -> Option<String> {
        match fleet.place(selector, Duration::from_secs(waited_s)) {
            Placement::Worker(w) => Some(w.worker_id.clone()),
            _ => None,
        }
    }

    #[test]
    fn least_loaded_by_share_of_capacity() {
        let fleet = fleet(vec![worker("a", "prod", 10, 5), worker("b", "prod", 4, 1)]);
        assert_eq!(placed(&fleet, &any(), 0).as_deref(), Some("b"));
        assert_eq!(fleet.free_slots(), 8);
    }

    #[test]
    fn jobs_spread_evenly_over_equal_workers() {
        let mut fleet = fleet(vec![worker("a", "prod", 4, 0), worker("b", "prod", 4, 0)]);
        let mut counts = HashMap::new();
        for _ in 0..8 {
            let id = placed(&fleet, &any(), 0).unwrap();
            fleet.get_mut(&id).unwrap().used += 1;
            *counts.entry(id).or_insert(0) += 1;
        }
        assert_eq!((counts["a"], counts["b"]), (4, 4));
        assert_eq!(fleet.place(&any(), Duration::ZERO), Placement::Wait, "all full");
    }

    #[test]
    fn overflow_waits_for_its_threshold_in_auto() {
        let mut fleet = fleet(vec![worker("prod-1", "prod", 1, 1), worker("qa-1", "qa", 5, 0)]);
        assert_eq!(fleet.place(&any(), Duration::from_secs(59)), Placement::Wait);
        assert_eq!(placed(&fleet, &any(), 60).as_deref(), Some("qa-1"));
        assert_eq!(
            fleet.free_slots(),
            5,
            "overflow slots count: jobs wait here, not in GitLab"
        );
        fleet.get_mut("prod-1").unwrap().used = 0;
        assert_eq!(
            placed(&fleet, &any(), 600).as_deref(),
            Some("prod-1"),
            "production first"
        );
    }

    #[test]
    fn the_operator_switch_forces_or_closes_overflow() {
        let mut fleet = fleet(vec![worker("prod-1", "prod", 1, 1), worker("qa-1", "qa", 5, 0)]);
        fleet.overflow_mode = OverflowMode::On;
        assert_eq!(
            placed(&fleet, &any(), 0).as_deref(),
            Some("qa-1"),
            "at once when forced"
        );
        fleet.overflow_mode = OverflowMode::Off;
        assert_eq!(fleet.place(&any(), Duration::from_secs(3600)), Placement::Wait);
        assert_eq!(fleet.free_slots(), 0, "closed overflow offers no slots");
    }

    #[test]
    fn cordons_and_drains_stop_new_jobs_for_a_worker_or_a_cluster() {
        let mut fleet = fleet(vec![worker("a", "prod", 4, 1), worker("b", "prod", 4, 0)]);
        assert_eq!(fleet.cordon(CordonTarget::Worker("b".into()), Cordon::Cordoned), ["b"]);
        assert_eq!(placed(&fleet, &any(), 0).as_deref(), Some("a"));
        assert_eq!(fleet.state_of(fleet.get("b").unwrap()), "cordoned");
        fleet.cordon(CordonTarget::Cluster("cluster-a".into()), Cordon::Draining);
        assert_eq!(fleet.place(&any(), Duration::ZERO), Placement::Wait);
        assert_eq!(fleet.state_of(fleet.get("a").unwrap()), "draining");
        fleet.get_mut("a").unwrap().used = 0;
        assert_eq!(fleet.state_of(fleet.get("a").unwrap()), "drained");
        assert_eq!(fleet.free_slots(), 0);
        fleet.uncordon(&CordonTarget::Worker("b".into()));
        assert_eq!(placed(&fleet, &any(), 0).as_deref(), Some("b"));
    }

    #[test]
    fn a_cordon_waits_for_the_worker_it_names() {
        let mut fleet = fleet(vec![]);
        assert!(fleet
            .cordon(CordonTarget::Cluster("cluster-c".into()), Cordon::Cordoned)
            .is_empty());
        fleet.upsert(worker("c", "prod", 2, 0));
        assert_eq!(fleet.place(&any(), Duration::ZERO), Placement::Wait);
    }

    #[test]
    fn labels_route_and_unmatched_jobs_are_never_placed() {
        let mut arm = worker("arm", "prod", 2, 2);
        arm.labels.insert("arch".into(), "arm64".into());
        let fleet = fleet(vec![arm, worker("x86", "prod", 2, 0)]);
        let arm64 = ClusterSelector::parse("arch=arm64").unwrap();
        assert_eq!(
            fleet.place(&arm64, Duration::ZERO),
            Placement::Wait,
            "the arm worker is full"
        );
        let by_cluster = ClusterSelector::parse("cluster=cluster-x86").unwrap();
        assert_eq!(placed(&fleet, &by_cluster, 0).as_deref(), Some("x86"));
        let gpu = ClusterSelector::parse("gpu=a100").unwrap();
        assert_eq!(fleet.place(&gpu, Duration::ZERO), Placement::Never);
    }
}
