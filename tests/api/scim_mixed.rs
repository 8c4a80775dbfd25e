//! Black box: an identity provider (SCIM, behaving as Okta does: look the
//! person up by `userName`, then create or patch) and the Airtable webhook
//! write the same people at once, from concurrent clients, against two
//! replicas of the real binary with their workers on. Once the queue is
//! drained, who can log in follows the roster's holder of each email, and
//! a dry-run reconcile finds nothing to do.

use crate::binary::{assert_no_drift, provider_vars, reader, serve, Served};
use crate::gotrue::GoTrue;
use crate::helpers::*;
use crate::stress::queue_drained;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rosterd::event::Email;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::time::Duration;

const PEOPLE: usize = 8;
const CLIENTS: usize = 6;
const STEPS: usize = 30;

fn email(p: usize) -> String {
    format!("Person{p}@Mixed.example")
}

async fn start(url: &str, gotrue: Option<&GoTrue>) -> Vec<Served> {
    let mut served = Vec::new();
    for _ in 0..2 {
        let mut vars = provider_vars(gotrue);
        vars.extend([
            ("ROLE_MAP", "admins=admin".to_owned()),
            ("ROLE_DEFAULTS", "reader".to_owned()),
            ("SCIM_TOKENS", format!("idp:{SCIM_TOKEN}")),
            ("WORKER_POLL_SECS", "1".to_owned()),
        ]);
        served.push(serve(url, vars).await);
    }
    served
}

/// One SCIM step, as Okta makes it: find by userName, then act on what it
/// found. Concurrent clients race, so a step may meet a 404 (deleted
/// meanwhile) or a 409 (created meanwhile): both are answers, not errors.
async fn scim_step(client: &reqwest::Client, base: &str, p: usize, rng: &mut StdRng) {
    let scim = |m: reqwest::Method, path: String| {
        client
            .request(m, format!("{base}/scim/v2{path}"))
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", "application/scim+json")
    };
    let found: Value = scim(reqwest::Method::GET, "/Users".into())
        .query(&[("filter", format!("userName eq \"{}\"", email(p)))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = found["Resources"][0]["id"].as_str().map(str::to_owned);
    let active = rng.gen_bool(0.7);
    let given = format!("G{}", rng.gen_range(0..100));
    let status = match (id, rng.gen_range(0..6)) {
        (None, _) => {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": email(p),
                "name": {"givenName": given, "familyName": "Mixed"},
                "emails": [{"value": email(p), "type": "work", "primary": true}],
                "active": active,
            });
            scim(reqwest::Method::POST, "/Users".into())
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .status()
        }
        (Some(id), 0) => scim(reqwest::Method::DELETE, format!("/Users/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        (Some(id), _) => {
            let ops = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": active, "name.givenName": given}}],
            });
            scim(reqwest::Method::PATCH, format!("/Users/{id}"))
                .body(ops.to_string())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(
        matches!(status.as_u16(), 200 | 201 | 204 | 404 | 409),
        "SCIM step for person {p}: {status}"
    );
}

/// One webhook event about person `p`'s Airtable record, dated a little
/// before or after now, so some are older than what SCIM wrote and some
/// newer.
async fn webhook_step(client: &reqwest::Client, base: &str, p: usize, n: usize, rng: &mut StdRng) {
    let at = chrono::Utc::now() + chrono::TimeDelta::milliseconds(rng.gen_range(-2_000..2_000));
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let event_id = format!("mixed-{p}-{n}-{}", rng.gen::<u32>());
    let record = format!("recMixed{p}");
    let body = match rng.gen_range(0..6) {
        0 => delete_event(&event_id, &at, &record),
        k => {
            let mut e = upsert_event("user.updated", &event_id, &at, &record, &email(p));
            e["user"]["status"] = json!(if k == 1 { "disabled" } else { "active" });
            e["user"]["groups"] = json!(if k == 2 { vec!["admins"] } else { vec![] });
            e
        }
    };
    let r = post_signed_to(client, base, &body).await;
    assert_eq!(r.status(), 200, "{body}");
}

/// The roster's answer for each email: may its person log in?
async fn expected(db: &PgPool) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for p in 0..PEOPLE {
        let e = Email::parse(&email(p)).unwrap();
        let mut conn = db.acquire().await.unwrap();
        let holder = rosterd::roster::store::holder_of(&mut conn, &e)
            .await
            .unwrap();
        let active = match holder {
            None => false,
            Some(id) => {
                let status: String = sqlx::query_scalar("select status from roster where id = $1")
                    .bind(id.as_str())
                    .fetch_one(db)
                    .await
                    .unwrap();
                status == "active"
            }
        };
        out.push((e.as_str().to_owned(), active));
    }
    out
}

async fn mixed(opts: PgConnectOptions, gotrue: Option<GoTrue>, seed: u64) {
    let _shared = HEAVY.read().await;
    let db = migrated(&opts).await;
    let url = url_of(&opts);
    let service = start(&url, gotrue.as_ref()).await;
    let bases: Vec<String> = service.iter().map(|s| s.base.clone()).collect();
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, bases) = (client.clone(), bases.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ (c as u64 + 1));
            for n in 0..STEPS {
                let base = &bases[rng.gen_range(0..bases.len())];
                let p = rng.gen_range(0..PEOPLE);
                if c % 2 == 0 {
                    scim_step(&client, base, p, &mut rng).await;
                } else {
                    webhook_step(&client, base, p, n, &mut rng).await;
                }
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    assert!(
        poll(Duration::from_secs(60), || queue_drained(&db)).await,
        "the queue did not drain"
    );
    let provider = reader(gotrue.as_ref(), &db);
    for (email, may_log_in) in expected(&db).await {
        let user = provider.find_by_email(&email).await.unwrap();
        let can = user.as_ref().is_some_and(|u| !u.banned);
        assert_eq!(can, may_log_in, "{email} (seed {seed}): {user:?}");
    }
    // Both sources wrote: the roster holds events of each.
    let sources: Vec<String> =
        sqlx::query_scalar("select distinct source from inbound_events order by 1")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(sources, ["scim", "webhook"]);
    // ...and on the same records: SCIM found the webhook's records by
    // userName and patched them.
    let both: i64 = sqlx::query_scalar(
        "select count(*) from (select user_id from inbound_events group by user_id
                               having count(distinct source) = 2) r",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        both > 0,
        "no record was written by both sources (seed {seed})"
    );
    assert_no_drift(&url, gotrue.as_ref(), &format!("seed {seed}")).await;
}

fn seed() -> u64 {
    let seed = std::env::var("STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("scim_mixed seed {seed} (STRESS_SEED reruns it)");
    seed
}

#[sqlx::test(migrations = false)]
async fn scim_and_webhook_two_replicas_local(_p: PgPoolOptions, opts: PgConnectOptions) {
    mixed(opts, None, seed()).await;
}

#[sqlx::test(migrations = false)]
async fn scim_and_webhook_two_replicas_supabase(_p: PgPoolOptions, opts: PgConnectOptions) {
    mixed(opts, Some(GoTrue::start().await), seed()).await;
}
