//! Full reconcile: compare every person in the roster with the provider
//! and act only on differences, through the one provisioning function.

use super::person::{plan, Action, Person, PersonRow};
use super::provider::{AuthProvider, AuthUser, ProviderError};
use super::provision_person;
use crate::event::Email;
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Users fetched per provider request.
const PAGE_SIZE: u32 = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub created: u64,
    pub restored: u64,
    pub decommissioned: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub unmanaged: u64,
    pub failed: u64,
}

impl Report {
    fn count(&mut self, action: Action) {
        *match action {
            Action::Created => &mut self.created,
            Action::Restored => &mut self.restored,
            Action::Decommissioned => &mut self.decommissioned,
            Action::Updated => &mut self.updated,
            Action::Unchanged => &mut self.unchanged,
        } += 1;
    }

    /// The block operators know from the contract.
    pub fn render(&self) -> String {
        format!(
            "  Provisioning auth users from roster\n\n  created: {}\n  restored: {}\n  decommissioned: {}\n  updated: {}\n  unchanged: {}\n  unmanaged: {}\n  failed: {}\n\n  Reconciliation complete\n",
            self.created, self.restored, self.decommissioned, self.updated, self.unchanged, self.unmanaged, self.failed
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading the provider's users: {0}")]
    Provider(#[from] ProviderError),
    #[error("reading the roster: {0}")]
    Db(#[from] sqlx::Error),
}

struct Users {
    by_id: HashMap<Uuid, AuthUser>,
    by_email: HashMap<String, Uuid>,
}

async fn all_users(provider: &dyn AuthProvider) -> Result<Users, ProviderError> {
    let mut users = Users {
        by_id: HashMap::new(),
        by_email: HashMap::new(),
    };
    let mut page = Some(1);
    while let Some(n) = page {
        let p = provider.list_users(n, PAGE_SIZE).await?;
        for u in p.users {
            users.by_email.insert(u.email.to_lowercase(), u.id);
            users.by_id.insert(u.id, u);
        }
        page = p.next;
    }
    Ok(users)
}

/// With `dry_run`, counts what would be done and changes nothing.
pub async fn reconcile(
    db: &PgPool,
    provider: &dyn AuthProvider,
    dry_run: bool,
) -> Result<Report, ReconcileError> {
    let users = all_users(provider).await?;
    let mut report = Report::default();
    let mut managed: HashSet<Uuid> = HashSet::new();
    let mut pending = Vec::new();

    // Rows arrive grouped by email, holder first, so one person is
    // complete when the email changes.
    let mut rows = sqlx::query_as!(
        PersonRow,
        r#"select id, email as "email!", status as "status!", name, roles, auth_user_id
           from roster where email is not null
           order by email, (status <> 'deleted') desc, profile_at desc, profile_event_id desc"#
    )
    .fetch(db);
    let mut current: Option<Person> = None;
    while let Some(r) = rows.try_next().await? {
        if current.as_ref().is_none_or(|p| p.email.as_str() != r.email) {
            if let Some(person) = current.take() {
                judge(&person, &users, &mut managed, &mut report, &mut pending);
            }
            current = Some(Person::new(Email::from_trusted(r.email.clone())));
        }
        current.as_mut().expect("set above").push(r);
    }
    drop(rows);
    if let Some(person) = current.take() {
        judge(&person, &users, &mut managed, &mut report, &mut pending);
    }

    for (email, planned) in pending {
        if dry_run {
            report.count(planned);
            continue;
        }
        match provision_person(db, provider, &email).await {
            Ok(action) => report.count(action),
            Err(e) => {
                tracing::warn!(error = %e, "reconcile: provisioning a person failed");
                report.failed += 1;
            }
        }
    }
    // Linked anywhere in the roster (also rows without an email) is managed.
    let linked: Vec<Uuid> = sqlx::query_scalar!(
        "select auth_user_id as \"id!\" from roster where auth_user_id is not null"
    )
    .fetch_all(db)
    .await?;
    managed.extend(linked);
    report.unmanaged = users
        .by_id
        .keys()
        .filter(|id| !managed.contains(id))
        .count() as u64;
    Ok(report)
}

/// Decides one person from the prefetched users; people in sync are
/// counted at once, the rest are queued for the provisioning function.
fn judge(
    person: &Person,
    users: &Users,
    managed: &mut HashSet<Uuid>,
    report: &mut Report,
    pending: &mut Vec<(Email, Action)>,
) {
    let linked = |id: Uuid| users.by_id.get(&id);
    let others: Vec<&AuthUser> = person
        .other_links
        .iter()
        .filter_map(|id| linked(*id))
        .collect();
    let action = if person.desired().is_some() {
        // The same search order as provisioning: the linked user, else the
        // user with the email (which provisioning would adopt).
        let target = person
            .holder
            .as_ref()
            .and_then(|h| h.auth_user_id)
            .and_then(linked)
            .or_else(|| {
                users
                    .by_email
                    .get(person.email.as_str())
                    .and_then(|id| linked(*id))
            });
        if let Some(t) = target {
            managed.insert(t.id);
        }
        plan(person, target, &others)
    } else {
        let mut all = others;
        all.extend(
            person
                .holder
                .as_ref()
                .and_then(|h| h.auth_user_id)
                .and_then(linked),
        );
        plan(person, None, &all)
    };
    if action == Action::Unchanged {
        report.count(action);
    } else {
        pending.push((person.email.clone(), action));
    }
}
