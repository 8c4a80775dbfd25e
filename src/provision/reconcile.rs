//! Full reconcile: compare every person in the roster with the provider
//! and act only on differences, through the one provisioning function.

use super::person::{decide, Decision, Facts, Occupant, Person};
use super::provider::{AuthProvider, AuthUser, ProviderError};
use super::provision_person;
use crate::db::RunPool;
use crate::event::Email;
use crate::roster::store::{self, LinkRow};
use crate::state::Action;
use serde::Serialize;
use sqlx::PgConnection;
use std::collections::{BTreeSet, HashMap};
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
    /// Users without rosterd's marker and without a roster link: left alone.
    pub unmanaged: u64,
    /// Users with rosterd's marker that no roster row links and that can
    /// still log in (a crash between create and link, a link removed by
    /// hand): banned, or adopted by their email's active holder.
    pub orphaned: u64,
    pub failed: u64,
}

impl Report {
    fn count(&mut self, action: Action) {
        *match action {
            Action::Created => &mut self.created,
            Action::Restored => &mut self.restored,
            Action::Decommissioned => &mut self.decommissioned,
            Action::Updated => &mut self.updated,
            // Sent is the invitation job's word; provisioning never says it.
            Action::Unchanged | Action::Sent => &mut self.unchanged,
        } += 1;
    }

    /// The block operators know, with the orphans line added.
    pub(crate) fn render(&self) -> String {
        format!(
            "  Provisioning auth users from roster\n\n  created: {}\n  restored: {}\n  decommissioned: {}\n  updated: {}\n  unchanged: {}\n  unmanaged: {}\n  orphaned: {}\n  failed: {}\n\n  Reconciliation complete\n",
            self.created, self.restored, self.decommissioned, self.updated, self.unchanged, self.unmanaged, self.orphaned, self.failed
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

/// With `dry_run`, counts what would be done and changes nothing. The
/// roster is read through `db`, the caller's one main-pool connection;
/// each person is provisioned on a connection of `runs` (see crate::db).
pub async fn reconcile(
    db: &mut PgConnection,
    runs: &RunPool,
    provider: &dyn AuthProvider,
    dry_run: bool,
) -> Result<Report, ReconcileError> {
    let users = all_users(provider).await?;
    let links = store::all_links(&mut *db).await?;
    let mut report = Report::default();
    let mut pending = Vec::new();
    let mut people = BTreeSet::new();

    let mut judge = |person: Person| {
        match decide(&facts(person.clone(), &users, &links)) {
            Decision::Act(plan) if plan.action == Action::Unchanged => report.count(plan.action),
            Decision::Act(plan) => pending.push((person.email.clone(), Some(plan.action))),
            // Occupants are known here; a blocked person fails for real.
            Decision::LookUp | Decision::Blocked => pending.push((person.email.clone(), None)),
        }
        people.insert(person.email);
    };
    store::each_person(&mut *db, |email, rows| {
        judge(Person::from_rows(email, rows))
    })
    .await?;

    // Orphans on an email the roster knows are part of that person's plan;
    // the others are provisioned as a person with no rows: banned.
    for u in users.by_id.values() {
        if u.managed && !u.banned && !links.contains_key(&u.id) {
            report.orphaned += 1;
            let email = Email::from_trusted(u.email.clone());
            if !people.contains(&email) {
                pending.push((email, None));
            }
        }
    }
    report.unmanaged = users
        .by_id
        .values()
        .filter(|u| !u.managed && !links.contains_key(&u.id))
        .count() as u64;

    for (email, planned) in pending {
        if dry_run {
            match planned {
                Some(action) => report.count(action),
                None if people.contains(&email) => report.failed += 1,
                None => {}
            }
            continue;
        }
        match provision_person(runs, provider, &email).await {
            // An orphan-only email is counted as orphaned, not as a person.
            Ok(_) if !people.contains(&email) => {}
            Ok(action) => report.count(action),
            Err(e) => {
                tracing::warn!(error = %e, "reconcile: provisioning a person failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// What provisioning would read for `person`, from the prefetched users.
fn facts(person: Person, users: &Users, links: &HashMap<Uuid, LinkRow>) -> Facts {
    let linked = person
        .links()
        .filter_map(|id| users.by_id.get(&id).map(|u| (id, u.clone())))
        .collect();
    let occupant = match users.by_email.get(person.email.as_str()) {
        Some(id) => Occupant::User(users.by_id[id].clone(), links.get(id).cloned()),
        None => Occupant::Nobody,
    };
    Facts {
        person,
        linked,
        occupant,
    }
}
