//! One async lock per key (a BuildConfig, a delivery), forgotten as soon as nobody holds or waits
//! for it, so that a long-running process keeps no entry per key it ever saw.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Locks by key, each guarding a value of type `V` (what the holder leaves for the next one).
pub struct KeyedLocks<K, V = ()> {
    locks: Mutex<HashMap<K, Arc<AsyncMutex<V>>>>,
}

impl<K, V> Default for KeyedLocks<K, V> {
    fn default() -> Self {
        Self {
            locks: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> KeyedLocks<K, V> {
    /// Waits for the lock of `key` and holds it until the guard is dropped.
    pub async fn lock(&self, key: K) -> KeyedGuard<'_, K, V> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(key.clone()).or_default().clone()
        };
        KeyedGuard {
            locks: self,
            key,
            guard: Some(lock.lock_owned().await),
        }
    }

    /// How many keys are locked or waited for.
    pub fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is locked or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The held lock of one key; derefs to its value.
pub struct KeyedGuard<'a, K: Hash + Eq, V> {
    locks: &'a KeyedLocks<K, V>,
    key: K,
    guard: Option<OwnedMutexGuard<V>>,
}

impl<K: Hash + Eq, V> Deref for KeyedGuard<'_, K, V> {
    type Target = V;
    fn deref(&self) -> &V {
        self.guard
            .as_deref()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl<K: Hash + Eq, V> DerefMut for KeyedGuard<'_, K, V> {
    fn deref_mut(&mut self) -> &mut V {
        self.guard
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("held until drop"))
    }
}

impl<K: Hash + Eq, V> Drop for KeyedGuard<'_, K, V> {
    fn drop(&mut self) {
        self.guard = None;
        let mut locks = self.locks.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Waiters take their clone under this same mutex: only the map's reference left means
        // nobody holds or waits for the key.
        if locks.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn holders_of_one_key_take_turns_and_pass_the_value_on() {
        let locks = Arc::new(KeyedLocks::<String, Vec<u32>>::default());
        let mut tasks = Vec::new();
        for i in 0..20 {
            let locks = locks.clone();
            tasks.push(tokio::spawn(async move {
                let mut held = locks.lock("a".to_string()).await;
                let before = held.len();
                tokio::time::sleep(Duration::from_millis(1)).await;
                // Nobody else wrote while this one held the lock.
                assert_eq!(held.len(), before);
                held.push(i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty(), "the key is forgotten once nobody holds it");
        // A key forgotten starts from the default value again.
        assert!(locks.lock("a".to_string()).await.is_empty());
    }

    #[tokio::test]
    async fn a_key_stays_while_someone_waits_and_other_keys_do_not_wait() {
        let locks = KeyedLocks::<&str>::default();
        let a = locks.lock("a").await;
        // Another key is free at once.
        let b = locks.lock("b").await;
        assert_eq!(locks.len(), 2);
        drop(b);
        assert_eq!(locks.len(), 1);
        let waiting = locks.lock("a");
        tokio::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        drop(a);
        // The waiter still holds its reference: the key was kept for it.
        assert_eq!(locks.len(), 1);
        let again = waiting.await;
        drop(again);
        assert!(locks.is_empty());
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(20), f).await.ok()
    }
}
