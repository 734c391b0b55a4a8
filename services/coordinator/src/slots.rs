//! The slot gate: the coordinator takes a job from GitLab only when it has somewhere to run
//! it: the fleet has a free slot, the global `concurrent` is not reached, and the runner
//! entry is under its `limit`. Pollers wait here (no polling while full); a job holds its
//! slot from acceptance until GitLab has its final state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    /// Free slots the connected workers advertise (capacity − their running jobs).
    fleet_free: u32,
    /// Jobs accepted from GitLab and not yet finished, in total and per runner entry.
    held_total: u32,
    held_by_runner: HashMap<String, u32>,
    /// Jobs accepted but not yet on a worker (they use fleet slots the workers do not know
    /// are promised yet).
    waiting_dispatch: u32,
}

/// Limits from the runner config.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Global `concurrent` (0: no limit).
    pub concurrent: u32,
    /// Per runner entry `limit` (missing or 0: no limit).
    pub per_runner: HashMap<String, u32>,
}

pub struct SlotGate {
    limits: Limits,
    state: Mutex<State>,
    changed: Notify,
}

/// A slot reserved for one job request. Dropped without `accept`, it is given back.
pub struct Reservation {
    gate: Arc<SlotGate>,
    runner: String,
    accepted: bool,
}

impl SlotGate {
    pub fn new(limits: Limits) -> Arc<SlotGate> {
        Arc::new(SlotGate {
            limits,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        })
    }

    /// The fleet's free slots changed (a worker registered, heartbeated or left).
    pub fn set_fleet_free(&self, free: u32) {
        self.state.lock().unwrap().fleet_free = free;
        self.changed.notify_waiters();
    }

    fn has_room(&self, state: &State, runner: &str) -> bool {
        let under_concurrent = self.limits.concurrent == 0 || state.held_total < self.limits.concurrent;
        let runner_limit = self.limits.per_runner.get(runner).copied().unwrap_or(0);
        let held = state.held_by_runner.get(runner).copied().unwrap_or(0);
        let under_runner_limit = runner_limit == 0 || held < runner_limit;
        under_concurrent && under_runner_limit && state.fleet_free > state.waiting_dispatch
    }

    /// Waits until a job for `runner` could run, and reserves the slot.
    pub async fn reserve(self: &Arc<Self>, runner: &str) -> Reservation {
        loop {
            let notified = self.changed.notified();
            {
                let mut state = self.state.lock().unwrap();
                if self.has_room(&state, runner) {
                    state.held_total += 1;
                    *state.held_by_runner.entry(runner.to_string()).or_default() += 1;
                    state.waiting_dispatch += 1;
                    return Reservation {
                        gate: self.clone(),
                        runner: runner.to_string(),
                        accepted: false,
                    };
                }
            }
            notified.await;
        }
    }

    /// A job known from the store (coordinator restart) holds a slot; `dispatched` says
    /// whether a worker already has it.
    pub fn hold(&self, runner: &str, dispatched: bool) {
        let mut state = self.state.lock().unwrap();
        state.held_total += 1;
        *state.held_by_runner.entry(runner.to_string()).or_default() += 1;
        if !dispatched {
            state.waiting_dispatch += 1;
        }
    }

    /// A job taken back from a lost worker waits for dispatch again.
    pub fn hold_again_undispatched(&self) {
        self.state.lock().unwrap().waiting_dispatch += 1;
    }

    /// An accepted job went to a worker.
    pub fn dispatched(&self) {
        let mut state = self.state.lock().unwrap();
        state.waiting_dispatch = state.waiting_dispatch.saturating_sub(1);
        drop(state);
        self.changed.notify_waiters();
    }

    /// A job is over (GitLab has its final state): its slot is free again.
    pub fn release(&self, runner: &str, was_waiting_dispatch: bool) {
        let mut state = self.state.lock().unwrap();
        state.held_total = state.held_total.saturating_sub(1);
        if let Some(held) = state.held_by_runner.get_mut(runner) {
            *held = held.saturating_sub(1);
        }
        if was_waiting_dispatch {
            state.waiting_dispatch = state.waiting_dispatch.saturating_sub(1);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Jobs held in total (for status and tests).
    pub fn held(&self) -> u32 {
        self.state.lock().unwrap().held_total
    }
}

impl Reservation {
    /// GitLab gave a job: the slot stays taken until `SlotGate::release`.
    pub fn accept(mut self) {
        self.accepted = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.accepted {
            self.gate.release(&self.runner, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate(concurrent: u32, limit: u32) -> Arc<SlotGate> {
        SlotGate::new(Limits {
            concurrent,
            per_runner: HashMap::from([("r".to_string(), limit)]),
        })
    }

    async fn reserved_now(gate: &Arc<SlotGate>, runner: &str) -> Option<Reservation> {
        // A reservation that is possible is granted without waiting; `now_or_never` would
        // need futures' FutureExt, a zero timeout says the same.
        tokio::time::timeout(Duration::ZERO, gate.reserve(runner)).await.ok()
    }

    #[tokio::test]
    async fn no_fleet_capacity_no_reservation() {
        let gate = gate(0, 0);
        assert!(reserved_now(&gate, "r").await.is_none());
        gate.set_fleet_free(1);
        let first = reserved_now(&gate, "r").await.expect("a free slot");
        // The one free slot is promised to the first job until it is dispatched.
        assert!(reserved_now(&gate, "r").await.is_none());
        first.accept();
        gate.dispatched();
        // The worker now reports itself full.
        gate.set_fleet_free(0);
        assert!(reserved_now(&gate, "r").await.is_none());
    }

    #[tokio::test]
    async fn concurrent_and_runner_limits_hold() {
        let gate = gate(2, 1);
        gate.set_fleet_free(10);
        reserved_now(&gate, "r").await.unwrap().accept();
        assert!(reserved_now(&gate, "r").await.is_none(), "runner limit 1");
        reserved_now(&gate, "other").await.unwrap().accept();
        assert!(reserved_now(&gate, "third").await.is_none(), "concurrent 2");
        gate.release("r", true);
        assert!(reserved_now(&gate, "r").await.is_some());
    }

    #[tokio::test]
    async fn a_waiting_poller_wakes_when_room_appears() {
        let gate = gate(0, 0);
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.reserve("r").await.accept() })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.set_fleet_free(1);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gate.held(), 1);
    }

    #[tokio::test]
    async fn an_unused_reservation_is_given_back() {
        let gate = gate(1, 0);
        gate.set_fleet_free(1);
        drop(reserved_now(&gate, "r").await.unwrap());
        assert_eq!(gate.held(), 0);
        assert!(reserved_now(&gate, "r").await.is_some());
    }
}
