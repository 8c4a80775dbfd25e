//! One run at a time per key: concurrent callers for one key wait for the
//! first one's result instead of repeating its work (one Airtable call per
//! key, one provisioning run per person).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub(crate) struct SingleFlight<K, V> {
    in_flight: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    /// `work`'s result, or that of the run for `key` already under way.
    /// Should the first caller go away, a waiting one takes the work over.
    pub(crate) async fn run<F, Fut>(&self, key: &K, work: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = self
            .in_flight
            .lock()
            .expect("never poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let result = cell.get_or_init(work).await.clone();
        // The first caller to finish clears the entry; a later caller
        // starts afresh (and reads what this run wrote).
        let mut in_flight = self.in_flight.lock().expect("never poisoned");
        if in_flight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(key);
        }
        result
    }
}
