//! SCIM 2.0 (docs/contract.md §13), request by request as identity
//! providers send them: Okta's SPEC test sequence and the request bodies
//! Microsoft publishes for Entra ID (users and groups), both providers;
//! filters; and bad input on every endpoint, which changes nothing.

use crate::helpers::*;
use crate::provisioning::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

struct Scim {
    app: TestApp,
    h: Harness,
}

impl Scim {
    async fn local(db: PgPool) -> Self {
        let h = Harness::local(db.clone());
        Self::with(h).await
    }

    async fn gotrue(db: PgPool) -> Self {
        let h = Harness::gotrue(db.clone()).await;
        Self::with(h).await
    }

    async fn with(h: Harness) -> Self {
        let app = TestApp::spawn_with_provider(h.db.clone(), Arc::clone(&h.provider), |_| {}).await;
        Self { app, h }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(SCIM_TOKEN);
        if let Some(b) = body {
            // Okta sends application/json, Entra ID application/scim+json.
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        if status != StatusCode::NO_CONTENT {
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(ct, "application/scim+json", "{path}");
        }
        let body = r.json().await.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(body["schemas"], json!([ERROR]), "{body}");
            assert_eq!(body["status"], json!(status.as_u16().to_string()), "{body}");
        }
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, ops: Value) -> (StatusCode, Value) {
        self.call(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH], "Operations": ops})),
        )
        .await
    }

    async fn delete(&self, path: &str) -> StatusCode {
        self.call(Method::DELETE, path, None).await.0
    }

    async fn filter(&self, resource: &str, filter: &str) -> (StatusCode, Value) {
        let r = self
            .app
            .client
            .get(self.app.url(&format!("/scim/v2/{resource}")))
            .query(&[("filter", filter)])
            .bearer_auth(SCIM_TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_client_error() {
            assert_eq!(body["schemas"], json!([ERROR]), "{body}");
        }
        (status, body)
    }

    /// The ids a filter over Users finds.
    async fn ids(&self, filter: &str) -> Vec<String> {
        let (s, body) = self.filter("Users", filter).await;
        assert_eq!(s, 200, "{filter}: {body}");
        let mut ids: Vec<String> = body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }

    async fn counts(&self) -> (i64, i64, i64) {
        let q = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.h.db)
                .await
                .unwrap()
        };
        (
            q("select count(*) from roster").await,
            q("select count(*) from inbound_events").await,
            q("select count(*) from scim_groups").await,
        )
    }
}

fn okta_user(user_name: &str, given: &str, family: &str) -> Value {
    // Okta's SPEC test "create user" body.
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// Okta's SPEC test sequence, then the deprovisioning an Okta tenant does,
/// with the auth user checked after each provisioning round.
async fn okta_sequence(s: Scim) {
    // 1. Okta looks the user up before creating it.
    let (st, body) = s
        .get("/Users?filter=userName+eq+%22Ada.Lovelace%40Example.com%22&startIndex=1&count=100")
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], json!([]));

    // 2. Create.
    let (st, created) = s
        .post(
            "/Users",
            okta_user("Ada.Lovelace@Example.com", "Ada", "Lovelace"),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], "Ada.Lovelace@Example.com");
    assert_eq!(
        created["name"],
        json!({"givenName": "Ada", "familyName": "Lovelace"})
    );
    assert_eq!(created["active"], true);
    assert_eq!(created["externalId"], "00ujl29u0le5T6Aj10h7");
    assert!(created.get("password").is_none());
    assert_eq!(created["meta"]["resourceType"], "User");
    assert!(created["meta"]["location"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/scim/v2/Users/{id}")));
    s.h.drain_all().await;
    let auth =
        s.h.user("ada.lovelace@example.com")
            .await
            .expect("provisioned");
    assert!(!auth.banned);
    assert_eq!(auth.name.as_deref(), Some("Ada Lovelace"));

    // 3. Read it back, by id and by a filter in another case.
    let (st, got) = s.get(&format!("/Users/{id}")).await;
    assert_eq!((st, &got), (StatusCode::OK, &created));
    assert_eq!(
        s.ids(r#"userName eq "ada.lovelace@example.com""#).await,
        vec![id.clone()]
    );

    // 4. A second create with the same userName (any case) is refused.
    let (st, dup) = s
        .post("/Users", okta_user("ADA.LOVELACE@example.com", "A", "L"))
        .await;
    assert_eq!(st, 409);
    assert_eq!(dup["scimType"], "uniqueness");

    // 5. Okta's "update user" is a PUT of the whole user.
    let mut replaced = okta_user("Ada.Lovelace@Example.com", "Augusta Ada", "King");
    replaced["id"] = json!(id);
    let (st, put) = s.put(&format!("/Users/{id}"), replaced).await;
    assert_eq!(st, 200, "{put}");
    assert_eq!(put["name"]["givenName"], "Augusta Ada");
    s.h.drain_all().await;
    let again = s.h.user("ada.lovelace@example.com").await.unwrap();
    assert_eq!(
        (again.id, again.name.as_deref()),
        (auth.id, Some("Augusta Ada King"))
    );

    // 6. Deactivate: Okta's PATCH without a path.
    let (st, off) = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!((st, &off["active"]), (StatusCode::OK, &json!(false)));
    s.h.drain_all().await;
    assert!(s.h.user("ada.lovelace@example.com").await.unwrap().banned);
    // Still there for the identity provider to re-link.
    assert_eq!(
        s.ids(r#"userName eq "ada.lovelace@example.com""#).await,
        vec![id.clone()]
    );
    assert_eq!(s.ids("active eq false").await, vec![id.clone()]);
    let looked: Value = s
        .app
        .lookup("email=ada.lovelace@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(looked["status"], "disabled", "{looked}");

    // 7. Reactivate: the same auth user comes back.
    let (st, on) = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!((st, &on["active"]), (StatusCode::OK, &json!(true)));
    s.h.drain_all().await;
    let back = s.h.user("ada.lovelace@example.com").await.unwrap();
    assert_eq!((back.id, back.banned), (auth.id, false));

    // 8. Delete: gone for every verb, banned, and a new POST for the same
    //    userName is a new record holding the same auth user.
    assert_eq!(
        s.delete(&format!("/Users/{id}")).await,
        StatusCode::NO_CONTENT
    );
    s.h.drain_all().await;
    assert!(s.h.user("ada.lovelace@example.com").await.unwrap().banned);
    assert_eq!(s.get(&format!("/Users/{id}")).await.0, 404);
    assert_eq!(
        s.put(
            &format!("/Users/{id}"),
            okta_user("ada.lovelace@example.com", "A", "L")
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": true}}])
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.delete(&format!("/Users/{id}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.ids(r#"userName eq "ada.lovelace@example.com""#).await,
        Vec::<String>::new()
    );
    let (st, reborn) = s
        .post(
            "/Users",
            okta_user("ada.lovelace@example.com", "Ada", "Lovelace"),
        )
        .await;
    assert_eq!(st, 201);
    assert_ne!(reborn["id"], json!(id));
    s.h.drain_all().await;
    let reborn_auth = s.h.user("ada.lovelace@example.com").await.unwrap();
    assert_eq!((reborn_auth.id, reborn_auth.banned), (auth.id, false));

    // Every write is an event of source scim, shown to operators.
    let sources: Vec<(String, String)> =
        sqlx::query_as("select distinct source, event_type from inbound_events order by 1, 2")
            .fetch_all(&s.h.db)
            .await
            .unwrap();
    assert_eq!(
        sources,
        [
            ("scim", "user.created"),
            ("scim", "user.deleted"),
            ("scim", "user.updated")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where actor = 'okta' and action like 'scim.user.%'",
    )
    .fetch_one(&s.h.db)
    .await
    .unwrap();
    assert_eq!(audit, 6);
}

#[sqlx::test]
async fn okta_spec_sequence_local(db: PgPool) {
    okta_sequence(Scim::local(db).await).await;
}

#[sqlx::test]
async fn okta_spec_sequence_supabase(db: PgPool) {
    okta_sequence(Scim::gotrue(db).await).await;
}

/// The request bodies Microsoft documents for Entra ID provisioning
/// ("Tutorial: Develop and plan provisioning for a SCIM endpoint"), users
/// and groups, with roles following group membership through ROLE_MAP.
async fn entra_sequence(s: Scim) {
    let (st, _) = s.get("/Users?filter=userName+eq+%22Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1%40contoso.com%22").await;
    assert_eq!(st, 200);
    let (st, u) = s
        .post(
            "/Users",
            json!({
                "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": [],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
            }),
        )
        .await;
    assert_eq!(st, 201, "{u}");
    let uid = u["id"].as_str().unwrap().to_owned();
    // userName is an address: it is the person's email.
    s.h.drain_all().await;
    let auth =
        s.h.user("test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com")
            .await
            .expect("provisioned under userName");
    assert_eq!(auth.roles, ["reader"]);

    // Entra's PATCH: "Replace" and "Add" capitalised, booleans as strings,
    // value paths for the work address.
    let (st, p) = s
        .patch(
            &format!("/Users/{uid}"),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Add", "path": "displayName", "value": "Updated Name"},
                {"op": "Replace", "path": "active", "value": "False"}
            ]),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(p["name"]["familyName"], "updatedFamilyName");
    assert_eq!(p["name"]["givenName"], "givenName");
    assert_eq!(p["displayName"], "Updated Name");
    assert_eq!(p["active"], false);
    let (st, p) = s
        .patch(
            &format!("/Users/{uid}"),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!((st, &p["active"]), (StatusCode::OK, &json!(true)));

    // Groups: create empty, add a member Entra's way, rename, remove.
    let (st, g) = s
        .post(
            "/Groups",
            json!({"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "id": "c4d9ad7c-7e37-4d59-ae4c-ba3a0ea9d09c",
                   "displayName": "admins", "meta": {"resourceType": "Group"}, "schemas": [GROUP]}),
        )
        .await;
    assert_eq!(st, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_ne!(
        gid, "c4d9ad7c-7e37-4d59-ae4c-ba3a0ea9d09c",
        "the id is rosterd's"
    );
    let (st, _) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": uid}]}]),
        )
        .await;
    assert_eq!(st, 200);
    let (_, user) = s.get(&format!("/Users/{uid}")).await;
    assert_eq!(user["groups"][0]["value"], json!(gid));
    assert_eq!(user["groups"][0]["display"], "admins");
    s.h.drain_all().await;
    let auth =
        s.h.user("test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com")
            .await
            .unwrap();
    assert_eq!(auth.roles, ["admin", "reader"]);
    let (_, found) = s.filter("Groups", r#"displayName eq "ADMINS""#).await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["members"][0]["value"], json!(uid));

    // A rename moves every member to the new name (and off the mapped role).
    let (st, renamed) = s
        .patch(&format!("/Groups/{gid}"), json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]))
        .await;
    assert_eq!(st, 200, "{renamed}");
    s.h.drain_all().await;
    let auth =
        s.h.user("test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com")
            .await
            .unwrap();
    assert_eq!(auth.roles, ["reader"]);
    let groups: Vec<String> = sqlx::query_scalar("select unnest(groups) from roster where id = $1")
        .bind(&uid)
        .fetch_all(&s.h.db)
        .await
        .unwrap();
    assert_eq!(
        groups,
        ["1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"]
    );

    // Entra removes members with a value list.
    let (st, g2) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": uid}]}]),
        )
        .await;
    assert_eq!(st, 200);
    assert!(g2.get("members").is_none(), "{g2}");
    // Okta removes one with a filter; add back then remove that way.
    s.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    )
    .await;
    let (st, g3) = s
        .patch(
            &format!("/Groups/{gid}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
        )
        .await;
    assert_eq!(st, 200);
    assert!(g3.get("members").is_none(), "{g3}");

    // Deleting a group takes it off its members.
    s.patch(
        &format!("/Groups/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
    )
    .await;
    assert_eq!(
        s.delete(&format!("/Groups/{gid}")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.get(&format!("/Groups/{gid}")).await.0, 404);
    let (_, user) = s.get(&format!("/Users/{uid}")).await;
    assert!(user.get("groups").is_none(), "{user}");
    assert_eq!(
        s.delete(&format!("/Users/{uid}")).await,
        StatusCode::NO_CONTENT
    );
}

#[sqlx::test]
async fn entra_id_requests_local(db: PgPool) {
    entra_sequence(Scim::local(db).await).await;
}

#[sqlx::test]
async fn entra_id_requests_supabase(db: PgPool) {
    entra_sequence(Scim::gotrue(db).await).await;
}

/// Filters run in SQL over every record, whatever fed it.
#[sqlx::test]
async fn filters(db: PgPool) {
    let s = Scim::local(db).await;
    let mut ids = Vec::new();
    for (user, given, family, active) in [
        ("bjensen@example.com", "Barbara", "Jensen", true),
        ("jsmith@example.org", "John", "Smith", false),
        ("o.malley@example.com", "Kieran", "O'Malley", true),
    ] {
        let mut body = okta_user(user, given, family);
        body["active"] = json!(active);
        let (st, u) = s.post("/Users", body).await;
        assert_eq!(st, 201);
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    // A record from the webhook is a User too.
    s.app
        .post_signed(&upsert_event(
            "user.created",
            "evt1",
            "2026-01-01T00:00:00Z",
            "recWEB",
            "web@example.net",
        ))
        .await;
    let (b, j, o) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for (filter, want) in [
        (r#"userName eq "BJENSEN@example.com""#, vec![b.clone()]),
        (
            r#"userName ne "bjensen@example.com""#,
            vec![j.clone(), o.clone(), "recWEB".into()],
        ),
        (r#"userName sw "j""#, vec![j.clone()]),
        (r#"userName ew ".org""#, vec![j.clone()]),
        (r#"name.familyName co "O'Mal""#, vec![o.clone()]),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            vec![b.clone(), o.clone()],
        ),
        (
            r#"emails[type eq "work"].value ew "example.net""#,
            vec!["recWEB".into()],
        ),
        (r#"emails.value co "example.org""#, vec![j.clone()]),
        ("active eq false", vec![j.clone()]),
        (
            r#"not (active eq false) and name.givenName pr"#,
            vec![b.clone(), o.clone()],
        ),
        (
            r#"(userName sw "b" or userName sw "o") and active eq true"#,
            vec![b.clone(), o.clone()],
        ),
        (
            r#"meta.lastModified gt "2000-01-01T00:00:00Z""#,
            vec![b.clone(), j.clone(), o.clone(), "recWEB".into()],
        ),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, vec![]),
        (
            r#"externalId eq "00ujl29u0le5T6Aj10h7" and displayName eq "john smith""#,
            vec![j.clone()],
        ),
        (r#"userName eq "x\" or \"1\"=\"1""#, vec![]),
        (r#"userName co "%""#, vec![]),
        (r#"userName co "_""#, vec![]),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "jsmith@example.org""#,
            vec![j.clone()],
        ),
    ] {
        assert_eq!(s.ids(filter).await, sorted(want), "{filter}");
    }
    // Pagination: 1-based, stable, integer totals.
    let (_, p1) = s.get("/Users?startIndex=1&count=2").await;
    let (_, p2) = s.get("/Users?startIndex=3&count=2").await;
    assert_eq!(
        (p1["totalResults"].as_i64(), p1["itemsPerPage"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        (p2["startIndex"].as_i64(), p2["itemsPerPage"].as_i64()),
        (Some(3), Some(2))
    );
    let mut all: Vec<Value> = p1["Resources"].as_array().unwrap().clone();
    all.extend(p2["Resources"].as_array().unwrap().clone());
    let paged: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut expected = vec![b.as_str(), j.as_str(), o.as_str(), "recWEB"];
    expected.sort();
    assert_eq!(paged, expected);
    let (_, none) = s.get("/Users?count=0").await;
    assert_eq!(
        (none["totalResults"].as_i64(), none["Resources"].clone()),
        (Some(4), json!([]))
    );
    // attributes / excludedAttributes.
    let (_, only) = s
        .get(&format!("/Users/{b}?attributes=userName,name.givenName"))
        .await;
    assert_eq!(
        only,
        json!({"schemas": [USER], "id": b, "userName": "bjensen@example.com", "name": {"givenName": "Barbara"}})
    );
    let (_, without) = s
        .get(&format!("/Users/{b}?excludedAttributes=emails,meta"))
        .await;
    assert!(
        without.get("emails").is_none()
            && without.get("meta").is_none()
            && without.get("userName").is_some()
    );
}

/// Bad input on every endpoint: a SCIM error with the right status and
/// type, and nothing written.
#[sqlx::test]
async fn bad_input_changes_nothing(db: PgPool) {
    let s = Scim::local(db).await;
    let (_, u) = s
        .post("/Users", okta_user("kept@example.com", "Kept", "Person"))
        .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let (_, g) = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "kept"}),
        )
        .await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let before = s.counts().await;

    let user_paths = ["/Users".to_owned(), format!("/Users/{uid}")];
    let group_paths = ["/Groups".to_owned(), format!("/Groups/{gid}")];
    let raw = |method: Method, path: &str, body: &[u8], ct: &str| {
        s.app
            .client
            .request(method, s.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(SCIM_TOKEN)
            .header("content-type", ct)
            .body(body.to_vec())
            .send()
    };
    for (method, path) in [
        (Method::POST, &user_paths[0]),
        (Method::PUT, &user_paths[1]),
        (Method::PATCH, &user_paths[1]),
        (Method::POST, &group_paths[0]),
        (Method::PUT, &group_paths[1]),
        (Method::PATCH, &group_paths[1]),
    ] {
        for (body, ct, status, scim_type) in [
            (
                &b"{not json"[..],
                "application/scim+json",
                400,
                Some("invalidSyntax"),
            ),
            (
                &b"[1, 2]"[..],
                "application/scim+json",
                400,
                Some("invalidSyntax"),
            ),
            (
                &b"{\"a\": 1, \"a\": 2}"[..],
                "application/json",
                400,
                Some("invalidSyntax"),
            ),
            (
                &b"{\"schemas\": [\"urn:wrong\"], \"userName\": \"x@y.z\", \"displayName\": \"x\"}"
                    [..],
                "application/json",
                400,
                Some("invalidSyntax"),
            ),
            (&b"{}"[..], "text/plain", 415, None),
        ] {
            let r = raw(method.clone(), path, body, ct).await.unwrap();
            assert_eq!(
                r.status().as_u16(),
                status,
                "{method} {path} {}",
                String::from_utf8_lossy(body)
            );
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["scimType"].as_str(), scim_type, "{method} {path}: {e}");
        }
        let nul = json!({"schemas": [USER, GROUP, PATCH], "userName": "a\u{0}@b.c", "displayName": "x\u{0}", "Operations": []});
        let r = raw(
            method.clone(),
            path,
            nul.to_string().as_bytes(),
            "application/json",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{method} {path} NUL");
        let huge =
            json!({"schemas": [USER], "userName": "a@b.c", "displayName": "x".repeat(600 * 1024)});
        let r = raw(
            method.clone(),
            path,
            huge.to_string().as_bytes(),
            "application/json",
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 413, "{method} {path} huge");
        // No token, a wrong one, an admin token: 401 with a challenge.
        for token in [
            None,
            Some("wrong-token-0123456789abcdef0123456789"),
            Some(ADMIN_TOKEN),
        ] {
            let mut req = s
                .app
                .client
                .request(method.clone(), s.app.url(&format!("/scim/v2{path}")));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req
                .header("content-type", "application/json")
                .body(okta_user("new@example.com", "N", "P").to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{method} {path} {token:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer");
        }
    }
    assert_eq!(s.counts().await, before, "a refused body wrote something");
    // Values that break the rules.
    for body in [
        json!({"schemas": [USER]}),
        json!({"schemas": [USER], "userName": "not-an-address"}),
        json!({"schemas": [USER], "userName": "a@b.c", "active": "maybe"}),
        json!({"schemas": [USER], "userName": "a@b.c", "name": "Ann"}),
        json!({"schemas": [USER], "userName": "a@b.c", "displayName": "x".repeat(300)}),
        json!({"schemas": [USER], "userName": "a@b.c", "emails": (0..11).map(|i| json!({"value": format!("{i}@b.c")})).collect::<Vec<_>>()}),
    ] {
        let (st, e) = s.post("/Users", body.clone()).await;
        assert_eq!(
            (st, e["scimType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalidValue")),
            "{body}"
        );
    }
    for (ops, scim_type) in [
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "add", "path": "groups", "value": [{"value": gid}]}]),
            "mutability",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "h@b.c"}}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "move", "path": "userName", "value": "x"}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": 5}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "taken@example.com"}]),
            "uniqueness",
        ),
    ] {
        if scim_type == "uniqueness" {
            s.post("/Users", okta_user("taken@example.com", "T", "K"))
                .await;
        }
        let before = s.counts().await;
        let (st, e) = s.patch(&format!("/Users/{uid}"), ops.clone()).await;
        assert!(st == 400 || st == 409, "{ops}: {st}");
        assert_eq!(e["scimType"], scim_type, "{ops}: {e}");
        assert_eq!(s.counts().await, before, "{ops} wrote something");
    }
    s.delete(&format!(
        "/Users/{}",
        s.ids(r#"userName eq "taken@example.com""#).await[0]
    ))
    .await;
    let before = s.counts().await;
    // Hostile filters: 400 invalidFilter, never a 5xx.
    let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
    let wide = vec![r#"userName eq "a""#; 200].join(" or ");
    for filter in [
        "userName eq",
        "userName eq 'x'",
        r#"userName eq "x"; drop table roster; --"#,
        r#"password eq "x""#,
        r#"userName gt true"#,
        r#"active co "t""#,
        r#"meta.created gt "yesterday""#,
        "\\",
        deep.as_str(),
        wide.as_str(),
    ] {
        for resource in ["Users", "Groups"] {
            let (st, e) = s.filter(resource, filter).await;
            assert_eq!(
                (st, e["scimType"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalidFilter")),
                "{resource} {:.60}",
                filter
            );
        }
    }
    // As many terms as a URL holds (a 10,000-term filter does not fit in
    // one; HTTP clients refuse to build it).
    let huge = vec![r#"userName eq "a""#; 2_000].join(" or ");
    let r = s
        .app
        .client
        .get(s.app.url("/scim/v2/Users"))
        .query(&[("filter", huge.as_str())])
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    // Refused by length (400 invalidFilter) or, past the server's limit on
    // a request's head, with 431: a 4xx either way, never a 5xx.
    assert!(matches!(r.status().as_u16(), 400 | 431), "{}", r.status());
    for q in ["startIndex=x", "count=1.5"] {
        assert_eq!(s.get(&format!("/Users?{q}")).await.0, 400, "{q}");
    }
    // Unknown ids and paths.
    assert_eq!(s.get("/Users/no-such-user").await.0, 404);
    assert_eq!(s.get("/Groups/not-a-uuid").await.0, 404);
    assert_eq!(s.get("/Nope").await.0, 404);
    let (st, _) = s
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "KEPT"}),
        )
        .await;
    assert_eq!(st, 409);
    assert_eq!(s.counts().await, before);
}

/// Operators see which way each person came in, and can filter events by
/// source, in the admin API (and the console, which uses the same filter).
#[sqlx::test]
async fn operators_see_and_filter_by_source(db: PgPool) {
    let s = Scim::local(db).await;
    let (_, u) = s
        .post("/Users", okta_user("ida@example.com", "Ida", "Scim"))
        .await;
    let uid = u["id"].as_str().unwrap().to_owned();
    s.app
        .post_signed(&upsert_event(
            "user.created",
            "evtWeb1",
            "2026-01-01T00:00:00Z",
            "recWeb1",
            "web@example.com",
        ))
        .await;
    let detail: Value = s
        .app
        .admin_get(&format!("/api/admin/users/{uid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["user"]["source"], "scim", "{detail}");
    let detail: Value = s
        .app
        .admin_get("/api/admin/users/recWeb1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["user"]["source"], "webhook", "{detail}");

    let list: Value = s
        .app
        .admin_get("/api/admin/events?source=scim")
        .await
        .json()
        .await
        .unwrap();
    let events = list["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{list}");
    assert_eq!(
        (events[0]["source"].as_str(), events[0]["userId"].as_str()),
        (Some("scim"), Some(uid.as_str()))
    );
    let list: Value = s
        .app
        .admin_get("/api/admin/events?source=webhook")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["events"].as_array().unwrap().len(), 1, "{list}");
    let bad = s.app.admin_get("/api/admin/events?source=fax").await;
    assert_eq!(bad.status(), 400);
    let replay: Value = s
        .app
        .admin_post(
            "/api/admin/events/replay",
            Some(&json!({"source": "scim", "dryRun": true})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["matched"], 1, "{replay}");
}

/// Attribute lists with any characters (a cut inside a character once
/// killed the connection) and of any length get an answer.
#[sqlx::test]
async fn attribute_lists_of_any_shape(db: PgPool) {
    let s = Scim::local(db).await;
    let (_, u) = s
        .post("/Users", okta_user("attrs@example.com", "A", "B"))
        .await;
    let id = u["id"].as_str().unwrap().to_owned();
    for (attrs, status) in [
        ("00000000\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{80}\u{10000}\u{10000}\u{10000}\u{10000}", 200),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userNamé", 200),
        ("é", 200),
    ] {
        for path in [format!("/Users/{id}"), "/Users".to_owned()] {
            let r = s
                .app
                .client
                .get(s.app.url(&format!("/scim/v2{path}")))
                .query(&[("attributes", attrs), ("excludedAttributes", attrs)])
                .bearer_auth(SCIM_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{path} {attrs}");
        }
    }
    let long = "a,".repeat(600);
    assert_eq!(
        s.get(&format!("/Users/{id}?attributes={long}")).await.0,
        400
    );
}
