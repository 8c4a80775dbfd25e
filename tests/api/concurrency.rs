//! Simultaneous deliveries, over a pool with a connection per request so
//! the database itself sees them at once.

use crate::helpers::*;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::sync::Arc;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

async fn wide_app(opts: PgConnectOptions) -> Arc<TestApp> {
    let db = PgPoolOptions::new()
        .max_connections(24)
        .connect_with(opts)
        .await
        .unwrap();
    Arc::new(TestApp::spawn(db).await)
}

/// Posts every body at the same moment; returns the response bodies.
async fn post_all_at_once(app: &Arc<TestApp>, bodies: Vec<Value>) -> Vec<Value> {
    let barrier = Arc::new(Barrier::new(bodies.len()));
    let mut tasks = JoinSet::new();
    for body in bodies {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let resp = app.post_signed(&body).await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        });
    }
    tasks.join_all().await
}

#[sqlx::test]
async fn same_event_twenty_times_at_once_applies_once(_p: PgPoolOptions, opts: PgConnectOptions) {
    let app = wide_app(opts).await;
    let ev = upsert_event(
        "user.created",
        "evt_1",
        "2026-11-22T10:00:00Z",
        "recA",
        "a@x.io",
    );
    let outcomes: Vec<String> = post_all_at_once(&app, vec![ev; 20])
        .await
        .iter()
        .map(|b| b["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "applied").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| *o == "duplicate").count(),
        19,
        "{outcomes:?}"
    );
    let state = db_state(&app.db).await;
    assert_eq!(state.events.len(), 1);
    assert_eq!(state.roster.len(), 1);
    assert_eq!(state.jobs, [("a@x.io".into(), "pending".into())]);
}

#[sqlx::test]
async fn twenty_different_events_at_once_leave_the_newest(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = wide_app(opts).await;
    // Minutes shuffled so arrival order has nothing to do with age.
    let minutes = [
        7, 3, 19, 0, 12, 5, 16, 9, 1, 14, 18, 2, 11, 6, 17, 4, 10, 13, 8, 15,
    ];
    let bodies: Vec<Value> = minutes
        .iter()
        .map(|m| {
            upsert_event(
                "user.updated",
                &format!("evt_{m:02}"),
                &format!("2026-11-22T10:{m:02}:00Z"),
                "recA",
                &format!("v{m}@x.io"),
            )
        })
        .collect();
    let responses = post_all_at_once(&app, bodies).await;
    assert!(responses
        .iter()
        .all(|r| r["outcome"] == "applied" || r["outcome"] == "stale"));
    let (email, last): (String, String) =
        sqlx::query_as("select email, last_event_id from roster where id = 'recA'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((email.as_str(), last.as_str()), ("v19@x.io", "evt_19"));
    let events: i64 = sqlx::query_scalar("select count(*) from inbound_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 20);
    // The newest event is never labelled stale.
    let newest = responses.iter().find(|r| r["eventId"] == "evt_19").unwrap();
    assert_eq!(newest["outcome"], "applied");
}
