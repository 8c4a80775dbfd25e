//! The newest-wins rule, free of I/O so it can be tested exhaustively.

use crate::event::{Change, Email, OrderKey, Profile, ProfileStatus, UserEvent};
use crate::roles::RoleMap;
use crate::state::RowStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileRegister {
    pub(crate) profile: Profile,
    /// Roles derived from the groups when the profile was written (§7).
    pub(crate) roles: Vec<String>,
    pub(crate) key: OrderKey,
}

/// A roster row's state: each register holds the newest event of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers {
    pub(crate) profile: Option<ProfileRegister>,
    pub(crate) deletion: Option<OrderKey>,
}

impl Registers {
    /// The newest order key either register holds.
    pub(crate) fn newest(&self) -> &OrderKey {
        match (&self.profile, &self.deletion) {
            (Some(p), Some(d)) => std::cmp::max(&p.key, d),
            (Some(p), None) => &p.key,
            (None, Some(d)) => d,
            (None, None) => unreachable!("a row always has at least one register"),
        }
    }

    /// `deleted` when the deletion is newer than the profile; the database
    /// derives the same in its generated `status` column.
    pub(crate) fn status(&self) -> RowStatus {
        match (&self.profile, &self.deletion) {
            (Some(p), Some(d)) if d <= &p.key => profile_status(&p.profile),
            (Some(p), None) => profile_status(&p.profile),
            _ => RowStatus::Deleted,
        }
    }

    pub(crate) fn email(&self) -> Option<&Email> {
        self.profile.as_ref().map(|p| &p.profile.email)
    }
}

fn profile_status(p: &Profile) -> RowStatus {
    match p.status {
        ProfileStatus::Active => RowStatus::Active,
        ProfileStatus::Disabled => RowStatus::Disabled,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merged {
    pub(crate) row: Registers,
    /// The event was not newer than everything the row had seen.
    pub(crate) stale: bool,
    /// The event wrote its register (so the row must be saved and the
    /// people it concerns re-provisioned).
    pub(crate) changed: bool,
}

/// Folds one event into a row. A stale event still fills its own register
/// when that register is older, which is what makes the result independent
/// of delivery order.
pub(crate) fn merge(current: Option<&Registers>, event: &UserEvent, roles: &RoleMap) -> Merged {
    let stale = current.is_some_and(|c| &event.key <= c.newest());
    let mut row = current.cloned().unwrap_or(Registers {
        profile: None,
        deletion: None,
    });
    let changed = match &event.change {
        Change::Upsert(profile) => {
            let newer = row.profile.as_ref().is_none_or(|p| event.key > p.key);
            if newer {
                row.profile = Some(ProfileRegister {
                    roles: roles.roles_for(&profile.groups),
                    profile: profile.clone(),
                    key: event.key.clone(),
                });
            }
            newer
        }
        Change::Delete => {
            let newer = row.deletion.as_ref().is_none_or(|d| &event.key > d);
            if newer {
                row.deletion = Some(event.key.clone());
            }
            newer
        }
    };
    Merged {
        row,
        stale,
        changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventId, EventType, RecordId};
    use chrono::{TimeZone, Utc};

    fn ev(secs: i64, id: &str, change: Change) -> UserEvent {
        UserEvent {
            event_type: match change {
                Change::Upsert(_) => EventType::Updated,
                Change::Delete => EventType::Deleted,
            },
            key: OrderKey {
                at: Utc.timestamp_opt(secs, 0).unwrap(),
                event_id: EventId::parse(id).unwrap(),
            },
            user_id: RecordId::parse("rec1").unwrap(),
            change,
        }
    }

    fn upsert(email: &str, status: ProfileStatus) -> Change {
        Change::Upsert(Profile {
            email: Email::parse(email).unwrap(),
            name: None,
            status,
            groups: vec![],
            details: None,
        })
    }

    fn fold(events: &[&UserEvent]) -> (Option<Registers>, Vec<bool>) {
        let roles = RoleMap::default();
        let mut row = None;
        let mut stale = vec![];
        for e in events {
            let m = merge(row.as_ref(), e, &roles);
            stale.push(m.stale);
            row = Some(m.row);
        }
        (row, stale)
    }

    #[test]
    fn delete_before_older_create_matches_in_order() {
        let c = ev(1, "a", upsert("ada@x.io", ProfileStatus::Active));
        let d = ev(2, "b", Change::Delete);
        let (in_order, s1) = fold(&[&c, &d]);
        let (reversed, s2) = fold(&[&d, &c]);
        assert_eq!(in_order, reversed);
        let row = in_order.unwrap();
        assert_eq!(row.status(), RowStatus::Deleted);
        assert_eq!(row.email().unwrap().as_str(), "ada@x.io");
        assert_eq!(s1, [false, false]);
        assert_eq!(s2, [false, true]);
    }

    #[test]
    fn equal_timestamps_are_ordered_by_event_id() {
        let a = ev(5, "evt-a", upsert("a@x.io", ProfileStatus::Active));
        let b = ev(5, "evt-b", upsert("b@x.io", ProfileStatus::Disabled));
        let (row, _) = fold(&[&b, &a]);
        let row = row.unwrap();
        assert_eq!(row.email().unwrap().as_str(), "b@x.io");
        assert_eq!(row.status(), RowStatus::Disabled);
    }

    #[test]
    fn recreate_after_delete_is_live_again() {
        let c = ev(1, "a", upsert("a@x.io", ProfileStatus::Active));
        let d = ev(2, "b", Change::Delete);
        let u = ev(3, "c", upsert("a@x.io", ProfileStatus::Active));
        let (row, stale) = fold(&[&u, &d, &c]);
        assert_eq!(row.unwrap().status(), RowStatus::Active);
        assert_eq!(stale, [false, true, true]);
    }

    #[test]
    fn replaying_the_same_event_changes_nothing() {
        let c = ev(1, "a", upsert("a@x.io", ProfileStatus::Active));
        let roles = RoleMap::default();
        let first = merge(None, &c, &roles);
        let again = merge(Some(&first.row), &c, &roles);
        assert!(again.stale && !again.changed);
        assert_eq!(again.row, first.row);
    }
}
