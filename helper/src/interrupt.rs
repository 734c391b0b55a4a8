//! The one place that decides whether the work in progress must stop: job/step deadline,
//! cancellation annotation, SIGTERM.

use std::path::Path;
use std::time::Instant;

use crate::cancel::{self, Cancel, CancelWatch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The deadline of the job (or of `after_script`) passed.
    Timeout,
    /// `flotilla.io/cancel` was set.
    Canceled(Cancel),
    /// The helper got SIGTERM: the Pod is being deleted or evicted.
    Terminated,
}

impl Interrupt {
    /// Whether nothing at all may run afterwards (no `after_script`).
    pub fn is_hard(self) -> bool {
        matches!(self, Interrupt::Canceled(Cancel::Abort) | Interrupt::Terminated)
    }
}

pub struct Watch {
    cancel: CancelWatch,
}

impl Watch {
    pub fn new(pod_info: Option<&Path>) -> Watch {
        Watch {
            cancel: CancelWatch::new(pod_info),
        }
    }

    /// The cancellation seen so far, if any.
    pub fn canceled(&mut self) -> Option<Cancel> {
        self.cancel.poll()
    }

    /// What interrupts work bounded by `deadline` (if any) right now, strongest first. With
    /// `stop_on_graceful` false, a graceful cancellation does not count (for `after_script`, which is
    /// what a graceful cancellation runs).
    pub fn check(&mut self, deadline: Option<Instant>, stop_on_graceful: bool) -> Option<Interrupt> {
        if cancel::sigterm_received() {
            return Some(Interrupt::Terminated);
        }
        match self.cancel.poll() {
            Some(Cancel::Graceful) if !stop_on_graceful => {}
            Some(c) => return Some(Interrupt::Canceled(c)),
            None => {}
        }
        match deadline {
            Some(d) if Instant::now() >= d => Some(Interrupt::Timeout),
            _ => None,
        }
    }
}
