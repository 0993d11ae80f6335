//! One lock per image name, so that ctrdiag's own pulls of the same name run one
//! after another. Entries live only while someone holds or waits for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub(super) struct PullLocks {
    names: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl PullLocks {
    /// Waits until no other ctrdiag pull of `name` runs, and holds that until the
    /// guard is dropped (it can move into a task that outlives the request).
    pub(super) async fn lock(&self, name: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            names.retain(|_, weak| weak.strong_count() > 0);
            match names.get(name).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    names.insert(name.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_name_waits_another_does_not() {
        use futures_util::FutureExt;
        let locks = PullLocks::default();
        let held = locks.lock("a").await;
        assert!(
            locks.lock("b").now_or_never().is_some(),
            "another name must not wait"
        );
        assert!(
            locks.lock("a").now_or_never().is_none(),
            "the same name must wait"
        );
        drop(held);
        assert!(locks.lock("a").now_or_never().is_some(), "released");
        assert!(
            locks
                .names
                .lock()
                .unwrap()
                .values()
                .all(|w| w.strong_count() == 0)
        );
    }
}
