//! The roster's SQL: small functions named by verb, each taking a
//! connection so one transaction can span several. This is the only place
//! that writes the `roster` table; provisioning and the lookup read it
//! through the functions here (admin's record pages and the metrics gauges
//! still read it with their own queries).
//!
//! - [`rows`]: a record's registers, read, locked, inserted and updated;
//! - [`events`]: the inbound events, recorded once and replayed;
//! - [`people`]: the rows carrying an email, and which of them holds it
//!   (the holder rule, written once there);
//! - [`links`]: which roster row each auth user is linked to;
//! - [`overrides`]: operators' role overrides per auth user;
//! - [`groups`]: SCIM groups (their members are rows whose `groups` name them);
//! - [`search`]: records and groups as SCIM shows them, filtered in SQL.

mod events;
mod filter_sql;
mod groups;
mod links;
mod overrides;
mod people;
mod rows;
mod search;

pub(crate) use events::{
    insert_event, insert_events, is_pruned, lock_event, record_reapply, set_event_outcome,
    stored_event,
};
pub(crate) use groups::{
    delete_group, groups_named, insert_group, lock_group, member_ids, name_taken, update_group,
};
pub(crate) use links::LinkRow;
pub(crate) use links::{all_links, link, link_new, link_row};
pub(crate) use overrides::{delete_override, has_override, put_override, roles_view, RolesView};
pub(crate) use people::{each_person, person_rows};
pub use people::{email_conflicts, holder_of};
pub(crate) use people::{
    held_elsewhere, lock_claims, login_row_by_email, login_row_by_id, user_name_taken, LoginRow,
    PersonRow,
};
pub use rows::{
    compare, email_of, insert_row, insert_rows, live_ids, lock_row, lock_rows, read_rows,
    update_row, update_rows, Comparison,
};
pub(crate) use search::{group, groups, people, person, GroupView, PersonView};

fn decode<T>(r: Result<T, String>) -> Result<T, sqlx::Error> {
    r.map_err(|e| sqlx::Error::Decode(e.into()))
}
