//! The object store: every object kube-sim holds, one global resourceVersion, and the
//! event history that watches replay from.
//!
//! Like etcd's revision, the resourceVersion is one counter across all kinds, bumped on
//! every write. The history is bounded; a watch from an RV older than its start gets
//! 410 Expired, as from a real server. Live events go to watchers through a broadcast
//! channel and to the kubelet through an unbounded channel (it must never miss a Pod).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, with the object as it was after the change.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub event: EventType,
    pub resource: Resource,
    pub namespace: String,
    pub object: Value,
    /// The object before the change (None for ADDED); the kubelet diffs labels with it.
    pub previous: Option<Value>,
}

type Key = (&'static str, String, String);

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// RVs at or above this one are fully in `history`.
    history_floor: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<Change>>,
    observers: Mutex<Vec<mpsc::UnboundedSender<Arc<Change>>>>,
    history_limit: usize,
}

/// What a watch starts from: the history after its RV, and the live feed after that.
pub struct WatchStart {
    pub backlog: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
    pub current_rv: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Store {
        let (live, _) = broadcast::channel(16 * 1024);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_floor: 1,
            }),
            live,
            observers: Mutex::new(Vec::new()),
            history_limit,
        }
    }

    /// A channel that receives every change, never dropping one.
    pub fn observe(&self) -> mpsc::UnboundedReceiver<Arc<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.observers.lock().unwrap().push(tx);
        rx
    }

    pub fn current_rv(&self) -> u64 {
        self.inner.lock().unwrap().rv
    }

    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> ApiResult<Value> {
        self.try_get(resource, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource.plural, name))
    }

    pub fn try_get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        let key = (resource.plural, namespace.to_string(), name.to_string());
        self.inner.lock().unwrap().objects.get(&key).cloned()
    }

    /// Objects of a kind (in one namespace, or all), in key order, and the list RV.
    pub fn list(
        &self,
        resource: Resource,
        namespace: Option<&str>,
        mut keep: impl FnMut(&Value) -> bool,
    ) -> (Vec<Value>, u64) {
        let inner = self.inner.lock().unwrap();
        let items = inner
            .objects
            .iter()
            .filter(|((plural, ns, _), _)| *plural == resource.plural && namespace.is_none_or(|want| want == ns))
            .map(|(_, obj)| obj)
            .filter(|obj| keep(obj))
            .cloned()
            .collect();
        (items, inner.rv)
    }

    /// Stores a new object; the caller has filled in the server-set metadata except the RV.
    pub fn create(&self, resource: Resource, namespace: &str, mut object: Value) -> ApiResult<Value> {
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let key = (resource.plural, namespace.to_string(), name.clone());
        let mut inner = self.inner.lock().unwrap();
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource.plural, &name));
        }
        let rv = inner.bump();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        inner.objects.insert(key, object.clone());
        self.record(
            &mut inner,
            rv,
            EventType::Added,
            resource,
            namespace,
            object.clone(),
            None,
        );
        Ok(object)
    }

    /// Changes an object in place. `change` sees the stored object and may refuse with an
    /// error; if it leaves the object as it was, nothing is written (no RV bump), like the
    /// real server's no-op updates.
    pub fn update(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> ApiResult<()>,
    ) -> ApiResult<Value> {
        let key = (resource.plural, namespace.to_string(), name.to_string());
        let mut inner = self.inner.lock().unwrap();
        let current = inner
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
        let mut updated = current.clone();
        change(&mut updated)?;
        // Identity fields are the server's, whatever the request said.
        for key in ["name", "uid", "creationTimestamp", "namespace", "resourceVersion"] {
            match current["metadata"].get(key) {
                Some(value) => updated["metadata"][key] = value.clone(),
                None => {
                    if let Some(meta) = updated["metadata"].as_object_mut() {
                        meta.remove(key);
                    }
                }
            }
        }
        if updated == current {
            return Ok(current);
        }
        let rv = inner.bump();
        updated["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        inner.objects.insert(key, updated.clone());
        self.record(
            &mut inner,
            rv,
            EventType::Modified,
            resource,
            namespace,
            updated.clone(),
            Some(current),
        );
        Ok(updated)
    }

    /// Removes an object; the DELETED event carries its last state at a new RV.
    pub fn remove(&self, resource: Resource, namespace: &str, name: &str) -> ApiResult<Value> {
        let key = (resource.plural, namespace.to_string(), name.to_string());
        let mut inner = self.inner.lock().unwrap();
        let mut object = inner
            .objects
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
        let rv = inner.bump();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        self.record(
            &mut inner,
            rv,
            EventType::Deleted,
            resource,
            namespace,
            object.clone(),
            None,
        );
        Ok(object)
    }

    /// Starts a watch after `after_rv`: the retained changes since, then the live feed,
    /// with no gap between them. Err(oldest retained RV) when `after_rv` is too old.
    pub fn watch_from(&self, after_rv: u64) -> Result<WatchStart, u64> {
        let inner = self.inner.lock().unwrap();
        if after_rv + 1 < inner.history_floor {
            return Err(inner.history_floor);
        }
        let backlog = inner
            .history
            .iter()
            .filter(|change| change.rv > after_rv)
            .cloned()
            .collect();
        Ok(WatchStart {
            backlog,
            live: self.live.subscribe(),
            current_rv: inner.rv,
        })
    }

    /// A live feed only, with the current RV (for watches that replay a list first).
    pub fn snapshot_and_subscribe(&self, resource: Resource, namespace: Option<&str>) -> (Vec<Value>, WatchStart) {
        let inner = self.inner.lock().unwrap();
        let items = inner
            .objects
            .iter()
            .filter(|((plural, ns, _), _)| *plural == resource.plural && namespace.is_none_or(|want| want == ns))
            .map(|(_, obj)| obj.clone())
            .collect();
        let start = WatchStart {
            backlog: Vec::new(),
            live: self.live.subscribe(),
            current_rv: inner.rv,
        };
        (items, start)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        inner: &mut Inner,
        rv: u64,
        event: EventType,
        resource: Resource,
        namespace: &str,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv,
            event,
            resource,
            namespace: namespace.to_string(),
            object,
            previous,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > self.history_limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.history_floor = dropped.rv + 1;
            }
        }
        // Sent under the lock so every receiver sees changes in RV order.
        let _ = self.live.send(change.clone());
        self.observers
            .lock()
            .unwrap()
            .retain(|tx| tx.send(change.clone()).is_ok());
    }
}

impl Inner {
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{PODS, SECRETS};
    use serde_json::json;

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": "u"}})
    }

    #[test]
    fn rv_is_global_and_monotonic() {
        let store = Store::new(100);
        let a = store.create(PODS, "default", obj("a")).unwrap();
        let s = store.create(SECRETS, "default", obj("s")).unwrap();
        let a_rv: u64 = a["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        let s_rv: u64 = s["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
        assert!(s_rv > a_rv);
        assert_eq!(store.current_rv(), s_rv);
        assert_eq!(
            store.create(PODS, "default", obj("a")).unwrap_err().reason,
            "AlreadyExists"
        );
    }

    #[test]
    fn noop_update_does_not_bump() {
        let store = Store::new(100);
        store.create(PODS, "default", obj("a")).unwrap();
        let rv = store.current_rv();
        store.update(PODS, "default", "a", |_| Ok(())).unwrap();
        assert_eq!(store.current_rv(), rv);
        let updated = store
            .update(PODS, "default", "a", |o| {
                o["metadata"]["labels"] = json!({"x": "y"});
                o["metadata"]["uid"] = json!("forged");
                Ok(())
            })
            .unwrap();
        assert_eq!(store.current_rv(), rv + 1);
        assert_eq!(updated["metadata"]["uid"], "u");
    }

    #[test]
    fn watch_replays_history_and_expires_old_rvs() {
        let store = Store::new(3);
        for name in ["a", "b", "c", "d", "e"] {
            store.create(PODS, "default", obj(name)).unwrap();
        }
        // RVs 2..=6 were written; only the last 3 (4,5,6) are kept.
        assert_eq!(store.watch_from(1).err(), Some(4));
        let start = store.watch_from(4).unwrap();
        let names: Vec<_> = start
            .backlog
            .iter()
            .map(|c| c.object["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("d"), json!("e")]);
        let removed = store.remove(PODS, "default", "a").unwrap();
        assert_eq!(removed["metadata"]["resourceVersion"], "7");
        assert_eq!(store.get(PODS, "default", "a").unwrap_err().code, 404);
    }
}
