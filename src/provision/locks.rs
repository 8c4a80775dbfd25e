//! Serialises provisioning work that conflicts, and only that: a job holds
//! a session-level advisory lock on its person's email and on every auth
//! user it reads to decide and then changes. Postgres is the one place
//! every replica shares, so this holds across the whole fleet.
//!
//! Locks are taken in one canonical order (ascending key), so two jobs can
//! never wait on each other in a cycle. A job that finds, after reading,
//! that it needs a key it does not hold first *tries* it without waiting;
//! if that fails it drops everything and waits for the whole set in order.
//!
//! No row lock and no transaction stays open across a provider call: an
//! advisory lock belongs to the connection, which the job holds for its
//! duration. The guard closes that connection instead of returning it to
//! the pool when the job ends without releasing (an error path, a
//! cancelled future), so a lock can never outlive its job.

use crate::db::RunPool;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use uuid::Uuid;

/// Within one process, runs for one email take turns here first, holding
/// no connection while they wait: twenty concurrent logins of one new
/// person must not take twenty pooled connections only to queue on one
/// advisory lock (and starve every other request of the pool).
pub(crate) async fn turn(email: &str) -> tokio::sync::OwnedMutexGuard<()> {
    type Gates = Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>;
    static GATES: LazyLock<Gates> = LazyLock::new(Gates::default);
    let gate = {
        let mut gates = GATES.lock().expect("never poisoned: no panics inside");
        // Only emails being provisioned right now stay in the map.
        gates.retain(|_, g| g.strong_count() > 0);
        match gates.get(email).and_then(Weak::upgrade) {
            Some(g) => g,
            None => {
                let g = Arc::new(tokio::sync::Mutex::new(()));
                gates.insert(email.to_owned(), Arc::downgrade(&g));
                g
            }
        }
    };
    gate.lock_owned().await
}

/// A lock's identity: 64 bits of a hash of what it protects. A collision
/// only serialises two unrelated jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key(i64);

impl Key {
    pub(crate) fn email(email: &str) -> Self {
        Self::hash(b"email:", email.as_bytes())
    }

    pub(crate) fn user(id: Uuid) -> Self {
        Self::hash(b"user:", id.as_bytes())
    }

    fn hash(kind: &[u8], what: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(kind)
            .chain_update(what)
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self(i64::from_be_bytes(first))
    }
}

/// A pooled connection and the advisory locks it holds.
pub(crate) struct Locks {
    conn: Option<PoolConnection<Postgres>>,
    held: BTreeSet<Key>,
}

impl Locks {
    pub(crate) async fn new(db: &RunPool) -> Result<Self, sqlx::Error> {
        Ok(Self {
            conn: Some(db.pool().acquire().await?),
            held: BTreeSet::new(),
        })
    }

    /// The connection the job reads and writes the roster through.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until dropped")
    }

    pub(crate) fn holds_all(&self, keys: &BTreeSet<Key>) -> bool {
        keys.is_subset(&self.held)
    }

    /// Adds `keys` to the held set. What was read before may be stale
    /// afterwards (locks may have been dropped and taken again): read again.
    pub(crate) async fn take(&mut self, keys: &BTreeSet<Key>) -> Result<(), sqlx::Error> {
        let missing: Vec<Key> = keys.difference(&self.held).copied().collect();
        if missing.is_empty() {
            return Ok(());
        }
        // In order after everything held: waiting cannot close a cycle.
        let above = self.held.last().is_none_or(|top| missing[0] > *top);
        if above {
            for k in missing {
                lock(self.conn(), k).await?;
                self.held.insert(k);
            }
            return Ok(());
        }
        let mut got = true;
        for k in &missing {
            if try_lock(self.conn(), *k).await? {
                self.held.insert(*k);
            } else {
                got = false;
                break;
            }
        }
        if got {
            return Ok(());
        }
        let all: BTreeSet<Key> = self.held.union(keys).copied().collect();
        self.release().await?;
        for k in all {
            lock(self.conn(), k).await?;
            self.held.insert(k);
        }
        Ok(())
    }

    pub(crate) async fn release(&mut self) -> Result<(), sqlx::Error> {
        if !self.held.is_empty() {
            sqlx::query!("select pg_advisory_unlock_all()")
                .execute(self.conn())
                .await?;
            self.held.clear();
        }
        Ok(())
    }
}

impl Drop for Locks {
    fn drop(&mut self) {
        if !self.held.is_empty() {
            if let Some(conn) = self.conn.as_mut() {
                conn.close_on_drop();
            }
        }
    }
}

async fn lock(conn: &mut PgConnection, k: Key) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_lock($1)", k.0)
        .execute(conn)
        .await?;
    Ok(())
}

async fn try_lock(conn: &mut PgConnection, k: Key) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select pg_try_advisory_lock($1) as "got!""#, k.0)
        .fetch_one(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_kinds_and_values() {
        let id = Uuid::from_u128(7);
        assert_ne!(Key::email("a@x.io"), Key::email("b@x.io"));
        assert_ne!(Key::user(id), Key::email(&id.to_string()));
        assert_eq!(Key::email("a@x.io"), Key::email("a@x.io"));
    }
}
