//! The fleet as the coordinator sees it: connected workers, their cluster, pool, labels and
//! capacity, and the choice of a worker for a job (production pools first, least loaded
//! by free share of capacity, never a cordoned or full worker).

use std::collections::{BTreeMap, HashMap};

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
    pub cordoned: bool,
    /// Unix milliseconds.
    pub last_heartbeat_ms: i64,
}

impl WorkerInfo {
    pub fn free(&self) -> u32 {
        if self.cordoned {
            0
        } else {
            self.capacity.saturating_sub(self.used)
        }
    }
}

/// Which pools count as production (the rest are overflow, used only when allowed).
#[derive(Debug, Clone, Default)]
pub struct PoolPolicy {
    pub overflow_pools: Vec<String>,
}

impl PoolPolicy {
    pub fn is_overflow(&self, pool: &str) -> bool {
        self.overflow_pools.iter().any(|p| p == pool)
    }
}

#[derive(Debug, Default)]
pub struct Fleet {
    workers: HashMap<String, WorkerInfo>,
    pub policy: PoolPolicy,
}

impl Fleet {
    pub fn new(policy: PoolPolicy) -> Fleet {
        Fleet {
            workers: HashMap::new(),
            policy,
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

    /// Free slots where new jobs may go now (production pools; overflow pools too when
    /// `overflow_open`).
    pub fn free_slots(&self, overflow_open: bool) -> u32 {
        self.workers
            .values()
            .filter(|w| overflow_open || !self.policy.is_overflow(&w.pool))
            .map(WorkerInfo::free)
            .sum()
    }

    /// The worker a job goes to: production first, then overflow if allowed; among those,
    /// the one with the largest free share of its capacity (ties: most free slots, then id,
    /// so the choice is deterministic).
    pub fn pick(&self, overflow_open: bool) -> Option<&WorkerInfo> {
        let best_in = |overflow: bool| {
            self.workers
                .values()
                .filter(|w| self.policy.is_overflow(&w.pool) == overflow && w.free() > 0)
                .max_by(|a, b| {
                    let share = |w: &WorkerInfo| w.free() as f64 / w.capacity.max(1) as f64;
                    share(a)
                        .total_cmp(&share(b))
                        .then(a.free().cmp(&b.free()))
                        .then(b.worker_id.cmp(&a.worker_id))
                })
        };
        best_in(false).or_else(|| if overflow_open { best_in(true) } else { None })
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
            cordoned: false,
            last_heartbeat_ms: 0,
        }
    }

    fn fleet(workers: Vec<WorkerInfo>) -> Fleet {
        let mut fleet = Fleet::new(PoolPolicy {
            overflow_pools: vec!["qa".into()],
        });
        workers.into_iter().for_each(|w| fleet.upsert(w));
        fleet
    }

    #[test]
    fn least_loaded_by_share_of_capacity() {
        let fleet = fleet(vec![worker("a", "prod", 10, 5), worker("b", "prod", 4, 1)]);
        assert_eq!(fleet.pick(false).unwrap().worker_id, "b");
        assert_eq!(fleet.free_slots(false), 8);
    }

    #[test]
    fn jobs_spread_evenly_over_equal_workers() {
        let mut fleet = fleet(vec![worker("a", "prod", 4, 0), worker("b", "prod", 4, 0)]);
        let mut counts = HashMap::new();
        for _ in 0..8 {
            let id = fleet.pick(false).unwrap().worker_id.clone();
            fleet.get_mut(&id).unwrap().used += 1;
            *counts.entry(id).or_insert(0) += 1;
        }
        assert_eq!(counts["a"], 4);
        assert_eq!(counts["b"], 4);
        assert!(fleet.pick(false).is_none(), "all full");
    }

    #[test]
    fn overflow_only_when_open_and_production_full() {
        let mut fleet = fleet(vec![worker("prod-1", "prod", 1, 1), worker("qa-1", "qa", 5, 0)]);
        assert!(fleet.pick(false).is_none());
        assert_eq!(fleet.pick(true).unwrap().worker_id, "qa-1");
        assert_eq!(fleet.free_slots(false), 0);
        assert_eq!(fleet.free_slots(true), 5);
        fleet.get_mut("prod-1").unwrap().used = 0;
        assert_eq!(fleet.pick(true).unwrap().worker_id, "prod-1", "production first");
    }

    #[test]
    fn cordoned_workers_get_nothing() {
        let mut fleet = fleet(vec![worker("a", "prod", 4, 0)]);
        fleet.get_mut("a").unwrap().cordoned = true;
        assert!(fleet.pick(false).is_none());
        assert_eq!(fleet.free_slots(false), 0);
    }
}
