//! `SupabaseProvider` against the GoTrue stand-in, always through the
//! `AuthProvider` trait. No database involved.

use crate::gotrue::{Conflicts, Failure, GoTrue, Shape, KEY};
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::{AuthProvider, AuthUser, Profile, ProviderError, UserUpdate};
use secrecy::SecretString;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

fn provider(g: &GoTrue) -> SupabaseProvider {
    provider_with(g.url(), KEY, Duration::from_secs(5))
}

fn provider_with(url: &str, key: &str, timeout: Duration) -> SupabaseProvider {
    SupabaseProvider::new(url, SecretString::from(key.to_string()), timeout).unwrap()
}

fn profile(email: &str, name: &str, roster_id: &str) -> Profile {
    Profile {
        email: email.to_string(),
        name: Some(name.to_string()),
        roles: vec!["reader".to_string()],
        roster_id: roster_id.to_string(),
    }
}

fn ban(banned: bool) -> UserUpdate {
    UserUpdate {
        profile: None,
        banned: Some(banned),
    }
}

fn assert_transient(err: &ProviderError) {
    assert!(
        err.is_transient(),
        "expected a transient error, got {err:?}"
    );
}

fn assert_permanent(err: &ProviderError) -> &str {
    match err {
        ProviderError::Permanent { message } => message,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// A 200 listing with no users and the given `Link` header.
fn canned_listing(link: &str) -> Failure {
    Failure::Canned {
        status: 200,
        headers: vec![
            ("content-type", "application/json".into()),
            ("link", link.into()),
        ],
        body: r#"{"users": [], "aud": "authenticated"}"#.into(),
    }
}

#[tokio::test]
async fn create_get_update_ban_unban_keep_one_id() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = Uuid::new_v4();

    let created = p
        .create_user(id, &profile("Ada@X.io", "Ada", "recA"))
        .await
        .unwrap();
    let expected = AuthUser {
        id,
        email: "ada@x.io".into(),
        banned: false,
        name: Some("Ada".into()),
        roles: vec!["reader".into()],
        roster_id: Some("recA".into()),
        managed: true,
    };
    assert_eq!(created, expected);
    assert_eq!(
        g.user(id).unwrap().app_metadata["managed_by"],
        serde_json::json!("rosterd"),
        "ownership is recorded at the provider"
    );
    assert_eq!(p.get_user(id).await.unwrap(), Some(expected));
    let stored = g.user(id).unwrap();
    assert!(stored.email_confirmed_at.is_some(), "email_confirm: true");
    assert_eq!(g.last_api_version().as_deref(), Some("2024-01-01"));

    let moved = Profile {
        email: "ada.lovelace@x.io".into(),
        name: Some("Ada Lovelace".into()),
        roles: vec!["admin".into(), "reader".into()],
        roster_id: "recB".into(),
    };
    let updated = p
        .update_user(
            id,
            &UserUpdate {
                profile: Some(moved.clone()),
                banned: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.id, id);
    assert_eq!(updated.email, "ada.lovelace@x.io");
    assert_eq!(updated.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(updated.roles, ["admin", "reader"]);
    assert_eq!(updated.roster_id.as_deref(), Some("recB"));
    assert!(!updated.banned);

    let banned = p.update_user(id, &ban(true)).await.unwrap();
    assert!(banned.banned);
    assert_eq!(
        banned.email, "ada.lovelace@x.io",
        "a ban leaves the profile alone"
    );
    let until = g.user(id).unwrap().banned_until.expect("banned_until set");
    assert!(until > chrono::Utc::now() + chrono::TimeDelta::days(365 * 99));
    assert!(g.user(id).unwrap().is_banned());
    assert!(p.get_user(id).await.unwrap().unwrap().banned);

    let unbanned = p.update_user(id, &ban(false)).await.unwrap();
    assert!(!unbanned.banned);
    assert_eq!(g.user(id).unwrap().banned_until, None);

    // A name the roster dropped is removed, not left behind by the merge.
    let nameless = p
        .update_user(
            id,
            &UserUpdate {
                profile: Some(Profile {
                    name: None,
                    ..moved
                }),
                banned: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(nameless.name, None);

    assert_eq!(g.users().len(), 1);
    assert_eq!(g.users()[0].id, id);
}

#[tokio::test]
async fn update_merges_metadata_and_keeps_keys_rosterd_does_not_own() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = g.seed(
        Uuid::new_v4(),
        "grace@x.io",
        json!({"avatar": "g.png", "name": "G"}),
        json!({"tenant": "acme", "roles": ["legacy"]}),
    );
    let update = UserUpdate {
        profile: Some(profile("grace@x.io", "Grace Hopper", "recG")),
        banned: None,
    };
    let user = p.update_user(id, &update).await.unwrap();
    assert_eq!(user.roles, ["reader"]);
    assert_eq!(user.name.as_deref(), Some("Grace Hopper"));

    let stored = g.user(id).unwrap();
    assert_eq!(stored.user_metadata["avatar"], "g.png");
    assert_eq!(stored.app_metadata["tenant"], "acme");
    assert_eq!(stored.app_metadata["provider"], "email");
    assert_eq!(stored.app_metadata["roster_id"], "recG");
}

#[tokio::test]
async fn create_with_a_taken_email_is_email_exists() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.seed_email("ada@x.io");

    for email in ["ada@x.io", "ADA@X.IO"] {
        let err = p
            .create_user(Uuid::new_v4(), &profile(email, "Ada", "recA"))
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::EmailExists, "for {email}");
    }
    assert_eq!(g.users().len(), 1);
}

#[tokio::test]
async fn create_with_an_id_held_by_another_email_is_id_exists() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = g.seed(Uuid::new_v4(), "old@x.io", json!({}), json!({}));

    let err = p
        .create_user(id, &profile("ada@x.io", "Ada", "recA"))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::IdExists);
    assert_eq!(g.user(id).unwrap().email, "old@x.io");
    assert!(g.user_by_email("ada@x.io").is_none());
}

#[tokio::test]
async fn lost_create_response_is_transient_and_recovers_by_email() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = Uuid::new_v4();
    let ada = profile("ada@x.io", "Ada", "recA");
    g.lose_next_create();

    let err = p.create_user(id, &ada).await.unwrap_err();
    assert_transient(&err);
    assert!(g.user(id).is_some(), "the create did commit");

    // What the caller's retry sees, and how it adopts the user.
    assert_eq!(
        p.create_user(id, &ada).await.unwrap_err(),
        ProviderError::EmailExists
    );
    let found = p.find_by_email("ada@x.io").await.unwrap().unwrap();
    assert_eq!(found.id, id);
    assert_eq!(g.users().len(), 1);
}

#[tokio::test]
async fn create_answered_500_without_a_holder_stays_transient() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.fail_next(1, Failure::ServerError);
    let id = Uuid::new_v4();

    let err = p
        .create_user(id, &profile("ada@x.io", "Ada", "recA"))
        .await
        .unwrap_err();
    assert_transient(&err);
    assert_eq!(
        g.requests("GET", "/admin/users/{id}"),
        1,
        "one look at the id"
    );
    assert!(g.users().is_empty());
}

#[tokio::test]
async fn update_onto_a_taken_email_is_email_exists() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.seed_email("grace@x.io");
    let id = Uuid::new_v4();
    p.create_user(id, &profile("ada@x.io", "Ada", "recA"))
        .await
        .unwrap();

    let update = UserUpdate {
        profile: Some(profile("grace@x.io", "Ada", "recA")),
        banned: None,
    };
    let err = p.update_user(id, &update).await.unwrap_err();
    assert_eq!(err, ProviderError::EmailExists);
    assert_eq!(g.user(id).unwrap().email, "ada@x.io");
}

/// Both ways GoTrue versions answer a taken id or email (a bare 500, or a
/// 422 with a code), in both error body shapes: each is named by what is
/// taken, so the caller decides again instead of retrying or giving up.
#[tokio::test]
async fn taken_ids_and_emails_are_named_in_either_shape() {
    for shape in [Shape::Status500, Shape::Status422] {
        for legacy in [false, true] {
            let case = format!("{shape:?} legacy={legacy}");
            let g = GoTrue::start().await;
            g.set_conflict_shape(shape);
            g.set_legacy_errors(legacy);
            let p = provider(&g);
            let held = g.seed(Uuid::new_v4(), "old@x.io", json!({}), json!({}));
            g.seed_email("grace@x.io");

            let err = p
                .create_user(held, &profile("ada@x.io", "Ada", "recA"))
                .await
                .unwrap_err();
            assert_eq!(err, ProviderError::IdExists, "create, taken id: {case}");
            assert_eq!(
                g.requests("GET", "/admin/users/{id}"),
                1,
                "one look at the id: {case}"
            );

            let err = p
                .create_user(Uuid::new_v4(), &profile("Grace@x.io", "G", "recG"))
                .await
                .unwrap_err();
            assert_eq!(
                err,
                ProviderError::EmailExists,
                "create, taken email: {case}"
            );

            let ada = Uuid::new_v4();
            p.create_user(ada, &profile("ada@x.io", "Ada", "recA"))
                .await
                .unwrap();
            let onto_grace = UserUpdate {
                profile: Some(profile("grace@x.io", "Ada", "recA")),
                banned: None,
            };
            let err = p.update_user(ada, &onto_grace).await.unwrap_err();
            assert_eq!(
                err,
                ProviderError::EmailExists,
                "update, taken email: {case}"
            );

            let met = Conflicts {
                email_on_create: 1,
                id_on_create: 1,
                email_on_update: 1,
            };
            assert_eq!(g.conflicts(), met, "each answer was a conflict: {case}");
            assert_eq!(g.user(held).unwrap().email, "old@x.io", "{case}");
            assert_eq!(g.user(ada).unwrap().email, "ada@x.io", "{case}");
            assert_eq!(g.users().len(), 3, "{case}");
        }
    }
}

/// A 422 in any of the shapes versions and proxies use for "taken".
fn taken(body: serde_json::Value) -> Failure {
    Failure::Canned {
        status: 422,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

/// `user_already_exists` means a taken email to some servers and a taken
/// id to others, and servers from before error codes send only a message:
/// what is taken is read from the provider, not from the answer.
#[tokio::test]
async fn a_conflict_on_create_is_told_apart_by_reading_the_id() {
    let answers = [
        json!({"code": "user_already_exists", "message": "User already registered"}),
        json!({"code": "email_exists", "message": "A user with this email address has already been registered"}),
        json!({"code": 422, "msg": "A user with this email address has already been registered"}),
        json!({"code": 422, "msg": "User already registered"}),
    ];
    for answer in answers {
        let g = GoTrue::start().await;
        let p = provider(&g);
        let held = g.seed(Uuid::new_v4(), "old@x.io", json!({}), json!({}));

        // The id is another user's: whatever the code says, it is the id.
        g.fail_next(1, taken(answer.clone()));
        let err = p
            .create_user(held, &profile("ada@x.io", "Ada", "recA"))
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::IdExists, "{answer}");

        // The id is free: only the email can be taken.
        g.fail_next(1, taken(answer.clone()));
        let err = p
            .create_user(Uuid::new_v4(), &profile("old@x.io", "Old", "recO"))
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::EmailExists, "{answer}");

        // The id holds our own user (an earlier create whose answer was
        // lost): the email is taken by it, and the caller adopts it.
        g.fail_next(1, taken(answer.clone()));
        let err = p
            .create_user(held, &profile("OLD@x.io", "Old", "recO"))
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::EmailExists, "{answer}");
        assert_eq!(g.users().len(), 1, "{answer}");
    }

    // A proxy's 409 is read the same way.
    let g = GoTrue::start().await;
    let p = provider(&g);
    let held = g.seed_email("old@x.io");
    g.fail_next(
        1,
        Failure::Canned {
            status: 409,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"message":"duplicate key value violates unique constraint"}"#.into(),
        },
    );
    let err = p
        .create_user(held, &profile("ada@x.io", "Ada", "recA"))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::IdExists);
}

/// When the look-up that would explain a conflict fails, the create is
/// tried again later: a conflict is never a dead end.
#[tokio::test]
async fn a_conflict_that_cannot_be_explained_yet_is_transient() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.fail_next(
        1,
        taken(json!({"code": "user_already_exists", "message": "User already registered"})),
    );
    g.fail_next(1, Failure::ServerError);
    let err = p
        .create_user(Uuid::new_v4(), &profile("ada@x.io", "Ada", "recA"))
        .await
        .unwrap_err();
    assert_transient(&err);
    assert!(
        err.to_string().contains("user_already_exists"),
        "names the conflict: {err}"
    );
    assert_eq!(g.requests("GET", "/admin/users/{id}"), 1);
}

/// An update names no new id, so any conflict on it is the email; a ban,
/// which changes no email, cannot conflict.
#[tokio::test]
async fn a_conflict_on_an_email_change_is_email_exists() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = g.seed_email("ada@x.io");
    let change = UserUpdate {
        profile: Some(profile("grace@x.io", "Ada", "recA")),
        banned: None,
    };
    for answer in [
        json!({"code": "user_already_exists", "message": "User already registered"}),
        json!({"code": 422, "msg": "A user with this email address has already been registered"}),
    ] {
        g.fail_next(1, taken(answer.clone()));
        assert_eq!(
            p.update_user(id, &change).await.unwrap_err(),
            ProviderError::EmailExists,
            "{answer}"
        );
    }
    assert_eq!(
        g.total_requests(),
        2,
        "no look-up here: the caller looks the email up"
    );
    g.fail_next(
        1,
        taken(json!({"code": "email_exists", "message": "A user with this email address has already been registered"})),
    );
    assert_permanent(&p.update_user(id, &ban(true)).await.unwrap_err());
    assert_eq!(g.user(id).unwrap().email, "ada@x.io");
}

#[tokio::test]
async fn find_by_email_returns_only_the_exact_address() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    for decoy in ["ada@x.io.evil.com", "xada@x.io", "ada@x.iox", "axb@x.io"] {
        g.seed_email(decoy);
    }
    // GoTrue's filter also searches user_metadata.full_name.
    g.seed(
        Uuid::new_v4(),
        "fan@y.io",
        json!({"full_name": "ADA@X.IO fan club"}),
        json!({}),
    );

    assert_eq!(p.find_by_email("ada@x.io").await.unwrap(), None);
    // `_` is a LIKE wildcard server-side: "axb@x.io" matches the filter.
    assert_eq!(p.find_by_email("a_b@x.io").await.unwrap(), None);

    let ada = g.seed_email("ada@x.io");
    let a_b = g.seed_email("a_b@x.io");
    for wanted in ["ada@x.io", "ADA@X.IO", " Ada@x.io "] {
        let found = p.find_by_email(wanted).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(ada), "for {wanted:?}");
    }
    assert_eq!(
        p.find_by_email("a_b@x.io").await.unwrap().map(|u| u.id),
        Some(a_b)
    );
    assert_eq!(p.find_by_email("").await.unwrap(), None);
}

#[tokio::test]
async fn find_by_email_follows_pages() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    // Oldest, so listed last behind 450 candidates the filter also matches.
    let ada = g.seed_email("ada@x.io");
    for n in 0..450 {
        g.seed_email(&format!("ada@x.io.d{n}.com"));
    }

    let found = p.find_by_email("ada@x.io").await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(ada));
    assert_eq!(g.requests("GET", "/admin/users"), 3);
}

#[tokio::test]
async fn list_users_walks_every_page_including_double_digit_ones() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let seeded: HashSet<Uuid> = (0..1150)
        .map(|n| g.seed_email(&format!("user{n}@x.io")))
        .collect();

    let mut listed = Vec::new();
    let mut nexts = Vec::new();
    let mut page = 1;
    loop {
        let got = p.list_users(page, 100).await.unwrap();
        assert!(got.users.len() <= 100);
        listed.extend(got.users.iter().map(|u| u.id));
        nexts.push(got.next);
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }

    let mut expected_nexts: Vec<Option<u32>> = (2..=12).map(Some).collect();
    expected_nexts.push(None);
    assert_eq!(nexts, expected_nexts);
    assert_eq!(listed.len(), 1150, "no user twice");
    assert_eq!(listed.into_iter().collect::<HashSet<_>>(), seeded);
}

#[tokio::test]
async fn list_users_without_link_header_uses_total_count() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.set_omit_link_header(true);
    for n in 0..250 {
        g.seed_email(&format!("user{n}@x.io"));
    }

    assert_eq!(p.list_users(1, 100).await.unwrap().next, Some(2));
    assert_eq!(p.list_users(2, 100).await.unwrap().next, Some(3));
    let last = p.list_users(3, 100).await.unwrap();
    assert_eq!((last.users.len(), last.next), (50, None));
}

#[tokio::test]
async fn link_header_page_numbers_are_read_whole() {
    let g = GoTrue::start().await;
    let p = provider(&g);

    // rel="last" first, absolute URLs, page not the first parameter.
    g.fail_next(
        1,
        canned_listing(
            "<https://p.supabase.co/auth/v1/admin/users?page=30&per_page=50>; rel=\"last\", \
             <https://p.supabase.co/auth/v1/admin/users?per_page=50&page=12>; rel=\"next\"",
        ),
    );
    assert_eq!(p.list_users(11, 50).await.unwrap().next, Some(12));

    g.fail_next(
        1,
        canned_listing(
            "</admin/users?page=123&per_page=50>; rel=next, </admin/users?page=400>; rel=last",
        ),
    );
    assert_eq!(p.list_users(122, 50).await.unwrap().next, Some(123));

    // Only "last": this is the final page.
    g.fail_next(
        1,
        canned_listing("</admin/users?page=12&per_page=50>; rel=\"last\""),
    );
    assert_eq!(p.list_users(12, 50).await.unwrap().next, None);

    // A "next" that goes backwards would loop a caller forever.
    g.fail_next(1, canned_listing("</admin/users?page=3>; rel=\"next\""));
    assert_permanent(&p.list_users(12, 50).await.unwrap_err());
}

#[tokio::test]
async fn rate_limit_is_transient_with_retry_after() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 7,
        },
    );

    match p.get_user(Uuid::new_v4()).await.unwrap_err() {
        ProviderError::Transient {
            retry_after,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
    // Only the one request was refused.
    assert_eq!(p.get_user(Uuid::new_v4()).await.unwrap(), None);
}

#[tokio::test]
async fn server_error_is_transient() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    g.fail_next(2, Failure::ServerError);

    for _ in 0..2 {
        match p.list_users(1, 50).await.unwrap_err() {
            ProviderError::Transient { retry_after, .. } => assert_eq!(retry_after, None),
            other => panic!("expected transient, got {other:?}"),
        }
    }
    assert!(p.list_users(1, 50).await.is_ok());
}

#[tokio::test]
async fn bad_request_is_permanent() {
    let g = GoTrue::start().await;
    let p = provider(&g);

    let err = p
        .create_user(Uuid::new_v4(), &profile("not-an-email", "X", "recX"))
        .await
        .unwrap_err();
    let message = assert_permanent(&err);
    assert!(
        message.contains("400") && message.contains("validation_failed"),
        "{message}"
    );

    let err = p.list_users(1, 5000).await.unwrap_err();
    assert!(assert_permanent(&err).contains("per_page"));
}

#[tokio::test]
async fn missing_user_is_none_on_get_and_not_found_on_update() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let id = Uuid::new_v4();

    assert_eq!(p.get_user(id).await.unwrap(), None);
    assert_eq!(
        p.update_user(id, &ban(true)).await.unwrap_err(),
        ProviderError::NotFound
    );

    // A 404 that is not GoTrue's (say, a wrong base path at a gateway) must
    // not read as "no such user".
    g.fail_next(
        1,
        Failure::Canned {
            status: 404,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"message":"no Route matched with those values"}"#.into(),
        },
    );
    assert_permanent(&p.get_user(id).await.unwrap_err());
}

#[tokio::test]
async fn wrong_key_is_permanent() {
    let g = GoTrue::start().await;
    let p = provider_with(g.url(), "not-the-service-role-key", Duration::from_secs(5));

    let err = p.get_user(Uuid::new_v4()).await.unwrap_err();
    let message = assert_permanent(&err);
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("not-the-service-role-key"), "{message}");
}

#[tokio::test]
async fn answer_slower_than_the_timeout_is_transient() {
    let g = GoTrue::start().await;
    g.set_latency(Duration::from_secs(3));
    let p = provider_with(g.url(), KEY, Duration::from_millis(200));

    let err = p.get_user(Uuid::new_v4()).await.unwrap_err();
    assert_transient(&err);
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn unreachable_server_is_transient() {
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let p = provider_with(&url, KEY, Duration::from_secs(5));

    assert_transient(&p.get_user(Uuid::new_v4()).await.unwrap_err());
}

#[tokio::test]
async fn malformed_success_body_is_permanent() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    let canned = |body: &str| Failure::Canned {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
    };

    g.fail_next(1, canned("<html>surprise</html>"));
    assert_permanent(&p.get_user(Uuid::new_v4()).await.unwrap_err());

    g.fail_next(1, canned(r#"{"users": "nope"}"#));
    assert_permanent(&p.list_users(1, 50).await.unwrap_err());

    g.fail_next(1, canned(r#"{"id": "not-a-uuid", "email": "a@x.io"}"#));
    assert_permanent(&p.get_user(Uuid::new_v4()).await.unwrap_err());
}

#[tokio::test]
async fn both_error_body_shapes_are_understood() {
    for legacy in [false, true] {
        let g = GoTrue::start().await;
        g.set_legacy_errors(legacy);
        let p = provider(&g);
        g.seed_email("ada@x.io");
        let held = g.seed_email("old@x.io");

        let taken = p
            .create_user(Uuid::new_v4(), &profile("ada@x.io", "Ada", "recA"))
            .await
            .unwrap_err();
        assert_eq!(taken, ProviderError::EmailExists, "legacy={legacy}");

        let id_taken = p
            .create_user(held, &profile("new@x.io", "New", "recN"))
            .await
            .unwrap_err();
        assert_eq!(id_taken, ProviderError::IdExists, "legacy={legacy}");

        assert_eq!(p.get_user(Uuid::new_v4()).await.unwrap(), None);
        assert_eq!(
            p.update_user(Uuid::new_v4(), &ban(true)).await.unwrap_err(),
            ProviderError::NotFound
        );

        let invalid = p
            .create_user(Uuid::new_v4(), &profile("nope", "X", "recX"))
            .await
            .unwrap_err();
        let message = assert_permanent(&invalid);
        assert!(
            message.contains("validation_failed") && message.contains("Unable to validate email"),
            "legacy={legacy}: {message}"
        );
    }
}

#[tokio::test]
async fn service_key_never_appears_in_debug_or_errors() {
    let g = GoTrue::start().await;
    let p = provider(&g);
    assert!(!format!("{p:?}").contains(KEY));
    assert!(!format!("{p:#?}").contains(KEY));

    let mut errors = Vec::new();
    g.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 1,
        },
    );
    errors.push(p.get_user(Uuid::new_v4()).await.unwrap_err());
    g.fail_next(1, Failure::ServerError);
    errors.push(p.list_users(1, 10).await.unwrap_err());
    errors.push(p.list_users(1, 5000).await.unwrap_err());
    // A server that echoes the key back must not get it into our errors.
    g.fail_next(
        1,
        Failure::Canned {
            status: 400,
            headers: vec![("content-type", "application/json".into())],
            body: json!({"code": "validation_failed", "message": format!("bad key {KEY}")})
                .to_string(),
        },
    );
    errors.push(p.get_user(Uuid::new_v4()).await.unwrap_err());
    g.set_latency(Duration::from_secs(3));
    let impatient = provider_with(g.url(), KEY, Duration::from_millis(100));
    errors.push(impatient.get_user(Uuid::new_v4()).await.unwrap_err());
    g.set_latency(Duration::ZERO);

    let other = GoTrue::start_with_key("a-different-key").await;
    errors.push(provider(&other).get_user(Uuid::new_v4()).await.unwrap_err());

    for err in &errors {
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }
}

#[tokio::test]
async fn constructor_validates_the_url_and_tolerates_a_trailing_slash() {
    let key = || SecretString::from(KEY.to_string());
    let timeout = Duration::from_secs(1);
    for bad in ["ftp://x.supabase.co", "not a url", "https://x.io/?a=b", ""] {
        assert!(
            SupabaseProvider::new(bad, key(), timeout).is_err(),
            "{bad:?}"
        );
    }
    assert!(
        SupabaseProvider::new("https://x.io", SecretString::from(String::new()), timeout).is_err()
    );
    assert!(SupabaseProvider::new("https://x.io", key(), Duration::ZERO).is_err());

    let g = GoTrue::start().await;
    let p = provider_with(&format!("{}/", g.url()), KEY, timeout);
    assert!(format!("{p:?}").contains("/auth/v1"));
    assert_eq!(p.get_user(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(g.requests("GET", "/admin/users/{id}"), 1);
    assert_eq!(g.total_requests(), 1);
}
