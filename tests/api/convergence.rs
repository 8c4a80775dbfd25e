//! Property: any delivery order with any duplication ends in the roster —
//! and the holder of every email — that delivering once in order gives.

use crate::helpers::fresh_database;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rosterd::event::{Email, ParsedBody};
use rosterd::roles::RoleMap;
use rosterd::roster::apply::ingest_batch;
use rosterd::roster::{ingest, store, Source};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeSet;

const RECORDS: u8 = 4;
const EMAILS: u8 = 4;

#[derive(Debug, Clone)]
struct Ev {
    kind: u8,
    record: u8,
    email: u8,
    active: bool,
    /// Few distinct seconds, so equal timestamps (ordered by event id) occur.
    secs: u8,
}

fn email(i: u8) -> String {
    format!("person{i}@example.com")
}

fn to_json(i: usize, e: &Ev) -> Value {
    let kind = ["user.created", "user.updated", "user.deleted"][e.kind as usize];
    let mut user = json!({"id": format!("rec{}", e.record)});
    if e.kind < 2 {
        user["email"] = json!(email(e.email).to_uppercase());
        user["status"] = json!(if e.active { "active" } else { "disabled" });
        user["groups"] = json!(if e.email.is_multiple_of(2) {
            vec!["admins"]
        } else {
            vec![]
        });
        user["name"] = json!(format!("name {i}"));
    }
    json!({
        "eventId": format!("evt_{:03}_{}", 999 - i, e.record),
        "eventType": kind,
        "occurredAt": format!("2026-11-22T10:00:{:02}Z", e.secs),
        "user": user,
    })
}

fn history() -> impl Strategy<Value = (Vec<Value>, Vec<usize>)> {
    let ev = (0u8..3, 0..RECORDS, 0..EMAILS, any::<bool>(), 0u8..12).prop_map(
        |(kind, record, email, active, secs)| Ev {
            kind,
            record,
            email,
            active,
            secs,
        },
    );
    prop::collection::vec(ev, 1..28)
        .prop_flat_map(|h| {
            let n = h.len();
            (Just(h), prop::collection::vec(1usize..=3, n))
        })
        .prop_flat_map(|(h, copies)| {
            let events: Vec<Value> = h.iter().enumerate().map(|(i, e)| to_json(i, e)).collect();
            let delivery: Vec<usize> = copies
                .iter()
                .enumerate()
                .flat_map(|(i, &c)| std::iter::repeat_n(i, c))
                .collect();
            (Just(events), Just(delivery).prop_shuffle())
        })
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    roster: Vec<String>,
    holders: Vec<Option<String>>,
}

async fn reset(db: &PgPool) {
    sqlx::query(
        "truncate roster, inbound_events, event_replays, provisioning_jobs, provisioning_attempts",
    )
    .execute(db)
    .await
    .unwrap();
}

async fn deliver(db: &PgPool, roles: &RoleMap, events: &[&Value]) {
    for e in events {
        let body = ParsedBody::from_value((*e).clone()).expect("generated events are valid");
        ingest(db, &body, Source::Webhook, roles).await.unwrap();
    }
}

async fn snapshot(db: &PgPool) -> Snapshot {
    let roster = crate::helpers::db_state(db).await.roster;
    let mut conn = db.acquire().await.unwrap();
    let mut holders = Vec::new();
    for i in 0..EMAILS {
        let e = Email::parse(&email(i)).unwrap();
        let h = store::holder_of(&mut conn, &e).await.unwrap();
        holders.push(h.map(|r| r.to_string()));
    }
    Snapshot { roster, holders }
}

/// Every email the final roster carries has had provisioning queued.
async fn unqueued_emails(db: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(
        "select email from roster where email is not null
         except select email from provisioning_jobs",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// PROPTEST_CASES cases (default 64), nothing persisted.
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The reference: every event once, in occurrence order, on a fresh roster.
async fn delivered_in_order(db: &PgPool, roles: &RoleMap, events: &[Value]) -> Snapshot {
    let mut in_order: Vec<&Value> = events.iter().collect();
    in_order.sort_by_key(|e| {
        (
            e["occurredAt"].as_str().unwrap().to_owned(),
            e["eventId"].as_str().unwrap().to_owned(),
        )
    });
    reset(db).await;
    deliver(db, roles, &in_order).await;
    snapshot(db).await
}

#[test]
fn any_order_any_duplicates_same_roster() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(fresh_database());
    let roles = RoleMap::parse("admins=admin", "reader").unwrap();
    runner()
        .run(&history(), |(events, delivery)| {
            rt.block_on(async {
                let expected = delivered_in_order(&db, &roles, &events).await;

                reset(&db).await;
                let shuffled: Vec<&Value> = delivery.iter().map(|&i| &events[i]).collect();
                deliver(&db, &roles, &shuffled).await;
                let got = snapshot(&db).await;
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(unqueued_emails(&db).await, BTreeSet::new());
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}

/// The batch form of the apply path (imports) is the same rule: any
/// permutation of a history, cut into batches of distinct records and
/// applied batch by batch, leaves the roster and the holders that
/// delivering the events one by one in order leaves, with provisioning
/// queued for every email it carries.
#[test]
fn batches_apply_the_same_rule_as_single_events() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(fresh_database());
    let roles = RoleMap::parse("admins=admin", "reader").unwrap();
    runner()
        .run(&history(), |(events, delivery)| {
            rt.block_on(async {
                let expected = delivered_in_order(&db, &roles, &events).await;

                reset(&db).await;
                // Each event once, in the shuffled order of its first copy.
                let mut order: Vec<usize> = Vec::new();
                for &i in &delivery {
                    if !order.contains(&i) {
                        order.push(i);
                    }
                }
                let mut batch: Vec<ParsedBody> = Vec::new();
                for i in order {
                    let body = ParsedBody::from_value(events[i].clone()).unwrap();
                    if batch.iter().any(|b| b.event.user_id == body.event.user_id) {
                        ingest_batch(&db, &batch, Source::Import, &roles)
                            .await
                            .unwrap();
                        batch.clear();
                    }
                    batch.push(body);
                }
                ingest_batch(&db, &batch, Source::Import, &roles)
                    .await
                    .unwrap();
                prop_assert_eq!(snapshot(&db).await, expected);
                prop_assert_eq!(unqueued_emails(&db).await, BTreeSet::new());
                Ok::<(), TestCaseError>(())
            })
        })
        .unwrap();
}
