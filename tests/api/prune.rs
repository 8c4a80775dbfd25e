//! `rosterd prune`: payloads and finished jobs past the retention period
//! go, event ids stay (dedup is permanent), a dry run changes nothing, and
//! a pruned event cannot be replayed.

use crate::helpers::*;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

async fn prune_cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("prune")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("USER", "ops")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Everything prune may touch, for "nothing changed" checks.
async fn stored(db: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "select format('%s %s %s', event_id, payload, pruned_at) from inbound_events
         union all select format('job %s %s', id, state) from provisioning_jobs
         union all select format('attempt %s', id) from provisioning_attempts
         order by 1",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

fn event(id: &str, rec: &str, email: &str) -> Value {
    upsert_event("user.created", id, "2026-11-22T10:00:00Z", rec, email)
}

#[sqlx::test]
async fn prune_drops_old_payloads_and_jobs_and_keeps_dedup(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    let url = url_of(&opts);
    let app = TestApp::spawn(db.clone()).await;
    let (old, new) = (
        event("evt_old", "recOld", "old@x.io"),
        event("evt_new", "recNew", "new@x.io"),
    );
    for e in [&old, &new] {
        assert_eq!(app.post_signed(e).await.status(), 200);
    }
    // The old person's job finished long ago; the new one's is pending.
    sqlx::raw_sql(
        "update inbound_events set received_at = now() - interval '100 days' where event_id = 'evt_old';
         update provisioning_jobs set state = 'done', updated_at = now() - interval '100 days'
             where email = 'old@x.io';
         insert into provisioning_attempts (job_id, attempt, started_at, action)
             select id, 1, now() - interval '100 days', 'created' from provisioning_jobs
             where email = 'old@x.io'",
    )
    .execute(&db)
    .await
    .unwrap();

    let before = stored(&db).await;
    let (code, out, err) = prune_cli(&url, &["--older-than", "90d", "--dry-run", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (dry["payloads"].clone(), dry["jobs"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(dry["dryRun"], json!(true));
    assert_eq!(stored(&db).await, before, "a dry run changes nothing");

    let (code, out, err) = prune_cli(&url, &["--older-than", "90d"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("event payloads: 1\n"), "{out}");
    assert!(out.contains("finished jobs: 1\n"), "{out}");
    let payloads: Vec<(String, Value, bool)> = sqlx::query_as(
        "select event_id, payload, pruned_at is not null from inbound_events order by event_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(payloads[0], ("evt_new".into(), new.clone(), false));
    assert_eq!(payloads[1], ("evt_old".into(), Value::Null, true));
    let jobs: Vec<(String, String)> =
        sqlx::query_as("select email, state from provisioning_jobs order by email")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(jobs, [("new@x.io".to_string(), "pending".to_string())]);
    let attempts: i64 = sqlx::query_scalar("select count(*) from provisioning_attempts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "the pruned job's attempts went with it");
    let audit: Vec<(String, String)> = sqlx::query_as("select actor, action from audit_log")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        audit,
        [("cli:ops".to_string(), "retention.prune".to_string())]
    );

    // Dedup outlives the payload: the same body is a duplicate, another is 409.
    let again = app.post_signed(&old).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap()["outcome"],
        json!("duplicate")
    );
    let mut other = old.clone();
    other["user"]["name"] = json!("Someone Else");
    assert_eq!(app.post_signed(&other).await.status(), 409);

    // A pruned event cannot be replayed, alone or in bulk.
    let r = app
        .admin_post("/api/admin/events/evt_old/replay", None)
        .await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("pruned"),
        "{body}"
    );
    let bulk = app
        .admin_post(
            "/api/admin/events/replay",
            Some(&json!({"status": "applied", "dryRun": true})),
        )
        .await;
    assert_eq!(bulk.json::<Value>().await.unwrap()["matched"], json!(1));
    let detail: Value = app
        .admin_get("/api/admin/events/evt_old")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["payload"], Value::Null);
    assert!(detail["prunedAt"].is_string(), "{detail}");

    // Nothing is left to prune.
    let (_, out, _) = prune_cli(&url, &["--older-than", "90d", "--json"]).await;
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (second["payloads"].clone(), second["jobs"].clone()),
        (json!(0), json!(0))
    );
}

#[sqlx::test]
async fn prune_refuses_a_bad_period(_p: PgPoolOptions, opts: PgConnectOptions) {
    let url = url_of(&opts);
    for bad in ["", "90", "0d", "ninety days", "-5d"] {
        let arg = format!("--older-than={bad}");
        let (code, _, err) = prune_cli(&url, &[&arg]).await;
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("older-than"), "{bad:?}: {err}");
    }
    let (code, _, err) = prune_cli(&url, &[]).await;
    assert_eq!(code, 2, "{err}");
}

/// Open invitations past their expiry become `expired` (audited), whatever
/// the retention period; finished ones older than it are deleted; a dry run
/// counts and changes nothing.
#[sqlx::test]
async fn prune_expires_lapsed_invitations_and_deletes_old_ones(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    let url = url_of(&opts);
    sqlx::raw_sql(
        "insert into invitations (user_id, email, expires_at) values
             (gen_random_uuid(), 'lapsed@x.io', now() - interval '1 minute'),
             (gen_random_uuid(), 'open@x.io', now() + interval '1 day');
         insert into invitations (user_id, email, expires_at, state, accepted_at, updated_at) values
             (gen_random_uuid(), 'old@x.io', now() - interval '100 days', 'accepted',
              now() - interval '100 days', now() - interval '100 days'),
             (gen_random_uuid(), 'recent@x.io', now() - interval '1 day', 'accepted',
              now() - interval '2 days', now() - interval '2 days');",
    )
    .execute(&db)
    .await
    .unwrap();
    let states = || async {
        sqlx::query_as::<_, (String, String)>("select email, state from invitations order by email")
            .fetch_all(&db)
            .await
            .unwrap()
    };
    let before = states().await;
    let (code, out, err) = prune_cli(&url, &["--older-than", "90d", "--dry-run", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            dry["invitationsExpired"].clone(),
            dry["invitationsDeleted"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(states().await, before, "a dry run changes nothing");

    let (code, out, err) = prune_cli(&url, &["--older-than", "90d"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("invitations expired: 1\n"), "{out}");
    assert!(out.contains("old invitations: 1\n"), "{out}");
    assert_eq!(
        states().await,
        [
            ("lapsed@x.io".to_string(), "expired".to_string()),
            ("open@x.io".to_string(), "pending".to_string()),
            ("recent@x.io".to_string(), "accepted".to_string()),
        ]
    );
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'invitation.expire' and details->>'email' = 'lapsed@x.io'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}
