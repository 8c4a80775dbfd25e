//! Both signature schemes against the reference Standard Webhooks
//! implementation (the `standardwebhooks` crate), not our own signer.

use crate::helpers::*;
use sqlx::PgPool;
use standardwebhooks::Webhook;

fn body() -> Vec<u8> {
    serde_json::to_vec(&upsert_event(
        "user.created",
        "evt_sig",
        "2026-11-22T10:00:00Z",
        "recA",
        "ada@example.com",
    ))
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Headers as the reference implementation signs them.
fn standard(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let sig = Webhook::new(secret).unwrap().sign(id, ts, body).unwrap();
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ]
}

async fn status(app: &TestApp, body: &[u8], headers: &[(&str, String)]) -> u16 {
    app.post_inbound(body, headers).await.status().as_u16()
}

#[sqlx::test]
async fn reference_signed_request_is_accepted(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = body();
    assert_eq!(
        status(&app, &b, &standard(WHSEC, "msg_1", now(), &b)).await,
        200
    );
    // Our verifier agrees with the reference one on the same headers.
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in standard(WHSEC, "msg_2", now(), &b) {
        map.insert(k, v.parse().unwrap());
    }
    Webhook::new(WHSEC).unwrap().verify(&b, &map).unwrap();
}

#[sqlx::test]
async fn several_signatures_in_one_header(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = body();
    let mut h = standard(WHSEC, "msg_1", now(), &b);
    h[2].1 = format!(
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,xyz {}",
        h[2].1
    );
    assert_eq!(status(&app, &b, &h).await, 200);
}

#[sqlx::test]
async fn every_kind_of_forgery_is_refused(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = body();
    let ts = now();
    let good = standard(WHSEC, "msg_1", ts, &b);

    let wrong_secret = standard("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_1", ts, &b);
    assert_eq!(status(&app, &b, &wrong_secret).await, 401, "wrong secret");

    let mut flipped_body = b.clone();
    flipped_body[10] ^= 0x01;
    assert_eq!(
        status(&app, &flipped_body, &good).await,
        401,
        "flipped body byte"
    );

    let mut flipped_sig = good.clone();
    let mut sig = flipped_sig[2].1.clone().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    flipped_sig[2].1 = String::from_utf8(sig).unwrap();
    assert_eq!(
        status(&app, &b, &flipped_sig).await,
        401,
        "flipped signature byte"
    );

    let mut truncated = good.clone();
    let keep = truncated[2].1.len() - 4;
    truncated[2].1.truncate(keep);
    assert_eq!(
        status(&app, &b, &truncated).await,
        401,
        "truncated signature"
    );

    for missing in 0..3 {
        let mut h = good.clone();
        h.remove(missing);
        assert_eq!(
            status(&app, &b, &h).await,
            401,
            "missing {}",
            good[missing].0
        );
    }

    let mut other_id = good.clone();
    other_id[0].1 = "msg_2".into();
    assert_eq!(
        status(&app, &b, &other_id).await,
        401,
        "id not the signed one"
    );

    for skew in [-301, 301, -3600] {
        let h = standard(WHSEC, "msg_1", ts + skew, &b);
        assert_eq!(status(&app, &b, &h).await, 401, "timestamp skewed {skew}s");
    }
    for skew in [-290, 290] {
        let h = standard(WHSEC, &format!("msg_ok{skew}"), ts + skew, &b);
        assert_eq!(
            status(&app, &b, &h).await,
            200,
            "timestamp within tolerance {skew}s"
        );
        // Each accepted body is the same event: later ones are duplicates.
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from inbound_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[sqlx::test]
async fn rotation_accepts_every_configured_secret_only(db: PgPool) {
    let old = "old-secret-0123456789";
    let new = "new-secret-0123456789";
    let b = body();
    let during = TestApp::spawn_with(db.clone(), |c| c.verifier = verifier(&[old, new])).await;
    for s in [old, new] {
        let h = [("x-signature", plain_signature(s, &b))];
        assert_eq!(status(&during, &b, &h).await, 200, "{s} during rotation");
    }
    let after = TestApp::spawn_with(db, |c| c.verifier = verifier(&[new])).await;
    let h = [("x-signature", plain_signature(old, &b))];
    assert_eq!(status(&after, &b, &h).await, 401, "rotated-out secret");
    let h = [("x-signature", plain_signature(new, &b))];
    assert_eq!(status(&after, &b, &h).await, 200);
}

#[sqlx::test]
async fn plain_scheme_with_and_without_prefix_any_case(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let b = body();
    let prefixed = plain_signature(SECRET, &b);
    let bare = prefixed.trim_start_matches("sha256=").to_string();
    for sig in [
        prefixed.clone(),
        bare.clone(),
        bare.to_uppercase(),
        format!("sha256={}", bare.to_uppercase()),
    ] {
        assert_eq!(
            status(&app, &b, &[("x-signature", sig.clone())]).await,
            200,
            "{sig}"
        );
    }
    for bad in [
        format!("sha1={bare}"),
        bare[..62].to_string(),
        format!("{bare}00"),
        String::new(),
    ] {
        assert_eq!(
            status(&app, &b, &[("x-signature", bad.clone())]).await,
            401,
            "{bad}"
        );
    }
    // The plain scheme with the whsec_ secret's key bytes works too.
    let h = [("x-signature", plain_signature(WHSEC, &b))];
    assert_eq!(status(&app, &b, &h).await, 200);
}
