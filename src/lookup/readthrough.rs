//! The directory side of the login lookup: one upstream call per key at a
//! time, misses remembered for a while, and the fetched record applied
//! through the one apply path as a `readthrough` event.

use super::Key;
use crate::directory::{AirtableDirectory, Budget, DirectoryError, DirectoryRecord};
use crate::event::{Email, EventRules, EventType, ParsedBody, RecordId};
use crate::roles::RoleMap;
use crate::roster::{ingest, ApplyError, Outcome, Source};
use crate::single_flight::SingleFlight;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub struct ReadThrough {
    directory: Arc<AirtableDirectory>,
    negative_ttl: Duration,
    /// How long a lookup may wait on the directory.
    timeout: Duration,
    /// How long a lookup may wait in line for a request slot; a herd past
    /// that is told to come back (`DirectoryError::Busy`).
    queue_wait: Duration,
    misses: Mutex<HashMap<Key, Instant>>,
    in_flight: SingleFlight<Key, Result<Option<DirectoryRecord>, DirectoryError>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadThroughError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("applying the directory's record: {0}")]
    Apply(#[from] sqlx::Error),
}

impl ReadThrough {
    pub fn new(
        directory: Arc<AirtableDirectory>,
        negative_ttl: Duration,
        timeout: Duration,
        queue_wait: Duration,
    ) -> Self {
        Self {
            directory,
            negative_ttl,
            timeout,
            queue_wait,
            misses: Mutex::new(HashMap::new()),
            in_flight: SingleFlight::default(),
        }
    }

    /// The lookup's read-through, when a directory is configured and
    /// `USER_READTHROUGH_FALLBACK_ENABLED` is on; otherwise the lookup
    /// never calls the directory.
    pub fn enabled(
        directory: Arc<AirtableDirectory>,
        cfg: &crate::config::DirectoryConfig,
        queue_wait: Duration,
    ) -> Option<Arc<Self>> {
        cfg.readthrough_enabled.then(|| {
            Arc::new(Self::new(
                directory,
                cfg.negative_ttl,
                cfg.timeout,
                queue_wait,
            ))
        })
    }

    fn remembered_miss(&self, key: &Key) -> bool {
        let mut misses = self.misses.lock().expect("never poisoned");
        match misses.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                misses.remove(key);
                false
            }
            None => false,
        }
    }

    /// The directory's record for `key`; concurrent callers for one key
    /// share a single upstream call.
    async fn fetch(&self, key: &Key) -> Result<Option<DirectoryRecord>, DirectoryError> {
        if self.remembered_miss(key) {
            return Ok(None);
        }
        let now = Instant::now();
        let budget = Budget {
            deadline: now + self.timeout,
            // Retry-After speaks in whole seconds, so the callers told to
            // come back within one second arrive together: the line holds
            // a second's worth of them.
            queue_until: now + self.queue_wait.max(Duration::from_secs(1)),
        };
        self.in_flight
            .run(key, || async {
                let r = match key {
                    Key::Email(e) => self.directory.find_by_email(e.as_str(), budget).await,
                    Key::Id(id) => self.directory.get(id.as_str(), budget).await,
                };
                if let Ok(None) = r {
                    self.misses
                        .lock()
                        .expect("never poisoned")
                        .insert(key.clone(), Instant::now() + self.negative_ttl);
                }
                r
            })
            .await
    }

    /// Fetches `key` from the directory and applies it to the roster.
    /// `Ok(false)`: the directory does not know it (or holds something the
    /// roster cannot take, which is logged).
    pub(crate) async fn load(
        &self,
        db: &PgPool,
        roles: &RoleMap,
        rules: &EventRules,
        key: &Key,
    ) -> Result<bool, ReadThroughError> {
        let Some(record) = self.fetch(key).await? else {
            return Ok(false);
        };
        if let Key::Email(wanted) = key {
            // The client matched exactly; a record that does not would be
            // someone else's, whatever the directory answered.
            let got = record.email.as_deref().and_then(|e| Email::parse(e).ok());
            if got.as_ref() != Some(wanted) {
                return Ok(false);
            }
        }
        let Some(body) = to_event(&record, rules) else {
            tracing::warn!(record = %record.id, "directory record fails the event rules; ignored");
            return Ok(false);
        };
        match ingest(db, &body, Source::Readthrough, roles).await {
            Ok(Outcome::Applied | Outcome::Stale | Outcome::Duplicate) => Ok(true),
            Ok(Outcome::Failed) => Err(ReadThroughError::Apply(sqlx::Error::Protocol(format!(
                "the database refused record {}; its event is stored as failed",
                record.id
            )))),
            Err(ApplyError::Db(e)) => Err(e.into()),
            // A fresh event id per fetch: a conflict is a concurrent fetch
            // of the same record with other contents, which applied.
            Err(ApplyError::Conflict) => Ok(true),
        }
    }
}

/// A `user.updated` event dated now: the directory's answer is the newest
/// thing known about the record at this moment.
fn to_event(record: &DirectoryRecord, rules: &EventRules) -> Option<ParsedBody> {
    RecordId::parse(&record.id).ok()?;
    let now = chrono::Utc::now();
    let event_id = format!("readthrough:{}:{}", now.timestamp_micros(), record.id);
    ParsedBody::minted(
        &event_id,
        EventType::Updated,
        now,
        record.to_fields(),
        rules,
    )
    .ok()
}
