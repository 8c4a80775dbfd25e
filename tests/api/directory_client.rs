//! `AirtableDirectory` against the Airtable stand-in. No database involved.
//!
//! Every client here keeps to Airtable's 5 requests per second, so a test
//! costs about 0.2 s per request; waits that Airtable measures in tens of
//! seconds are configured down to milliseconds or checked against the
//! deadline instead.

use crate::airtable::{Airtable, Failure, Kind, BASE, KEY, REQUESTS_PER_SECOND, TABLE, TABLE_ID};
use rosterd::directory::{
    AirtableConfig, AirtableDirectory, DirectoryError, DirectoryRecord, FieldNames,
};
use secrecy::SecretString;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn config(at: &Airtable) -> AirtableConfig {
    AirtableConfig {
        api_url: at.url().to_string(),
        ..AirtableConfig::new(BASE, TABLE, SecretString::from(KEY.to_string()))
    }
}

fn directory(at: &Airtable) -> AirtableDirectory {
    AirtableDirectory::new(config(at)).unwrap()
}

fn directory_with(cfg: AirtableConfig) -> AirtableDirectory {
    AirtableDirectory::new(cfg).unwrap()
}

/// A deadline no test should come near.
fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn assert_unavailable(err: &DirectoryError) -> &str {
    match err {
        DirectoryError::Unavailable(message) => message,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn assert_rejected(err: &DirectoryError) -> &str {
    match err {
        DirectoryError::Rejected(message) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// A 200 with this JSON body instead of the next answer.
fn canned_ok(body: serde_json::Value) -> Failure {
    Failure::Canned {
        status: 200,
        body: body.to_string(),
    }
}

#[tokio::test]
async fn finds_the_exact_email_ignoring_case_and_surrounding_spaces() {
    let at = Airtable::start().await;
    let ada = at.insert(json!({
        "Email": " Ada@X.io ",
        "Name": "Ada Lovelace",
        "Status": "active",
        "Groups": ["eng", "ops"],
    }));
    at.insert_person("grace@x.io", "Grace Hopper");
    let d = directory(&at);

    let expected = DirectoryRecord {
        id: ada,
        email: Some("Ada@X.io".into()),
        name: Some("Ada Lovelace".into()),
        status: Some("active".into()),
        groups: vec!["eng".into(), "ops".into()],
    };
    for probe in ["ada@x.io", "ADA@x.IO", "  Ada@X.io\t"] {
        let found = d.find_by_email(probe, soon()).await.unwrap();
        assert_eq!(found.as_ref(), Some(&expected), "{probe:?}");
    }
    assert_eq!(d.find_by_email("nobody@x.io", soon()).await.unwrap(), None);
    assert_eq!(at.requests(Kind::Filter), 4);
    assert_eq!(at.filter_matches(), [1, 1, 1, 0]);
    assert!(at.invalid_formulas().is_empty());
}

#[tokio::test]
async fn lookalike_emails_and_names_do_not_match() {
    let at = Airtable::start().await;
    at.insert_person("ada@x.io.evil.com", "Decoy one");
    at.insert_person("xada@x.io", "Decoy two");
    at.insert_person("ada@x.i", "Decoy three");
    at.insert(json!({"Email": "someone@x.io", "Name": "ada@x.io"}));
    at.insert(json!({"Name": "ada@x.io", "Groups": "ada@x.io"}));
    let d = directory(&at);

    assert_eq!(d.find_by_email("ada@x.io", soon()).await.unwrap(), None);

    let ada = at.insert_person("ada@x.io", "Ada");
    let found = d.find_by_email("ada@x.io", soon()).await.unwrap().unwrap();
    assert_eq!(found.id, ada);
    assert_eq!(at.filter_matches(), [0, 1]);
}

#[tokio::test]
async fn emails_built_to_break_the_formula_match_only_their_owner() {
    let at = Airtable::start().await;
    let hostile = [
        "o'brien@x.io",
        r#"a\"b@x.io"#,
        r"a\'b@x.io",
        r"ends.with.a.backslash@x.io\",
        "x') , TRUE() , ('@x.io",
        r#"x") , TRUE() , ("@x.io"#,
        "{Email}@x.io",
        "}{@x.io",
        "a&b,c(d)@x.io",
        "a+b c%27#?=@x.io",
        "ünï@x.io",
    ];
    let mut owners = Vec::new();
    for email in hostile {
        owners.push(at.insert_person(email, "Hostile"));
    }
    at.insert_person("ada@x.io", "Bystander");
    let d = directory(&at);

    for (email, owner) in hostile.iter().zip(&owners) {
        let found = d.find_by_email(email, soon()).await.unwrap();
        assert_eq!(found.map(|r| r.id).as_ref(), Some(owner), "{email:?}");
    }
    // Case folding goes beyond ASCII, on both sides of the comparison.
    let found = d.find_by_email("ÜNÏ@X.IO", soon()).await.unwrap();
    assert_eq!(found.map(|r| r.id).as_ref(), owners.last());

    // Injection attempts nobody holds find nobody: the formula itself must
    // match nothing, not merely the client's second look.
    for email in [
        "y') , TRUE() , ('@x.io",
        "') & '",
        r"\",
        "'",
        "}",
        r"\') = LOWER('",
    ] {
        assert_eq!(
            d.find_by_email(email, soon()).await.unwrap(),
            None,
            "{email:?}"
        );
    }
    assert!(
        at.invalid_formulas().is_empty(),
        "{:?}",
        at.invalid_formulas()
    );
    let matches = at.filter_matches();
    assert_eq!(matches.len(), hostile.len() + 1 + 6);
    assert!(
        matches[..=hostile.len()].iter().all(|m| *m == 1),
        "{matches:?}"
    );
    assert!(
        matches[hostile.len() + 1..].iter().all(|m| *m == 0),
        "{matches:?}"
    );
}

#[tokio::test]
async fn inputs_that_cannot_be_an_email_send_nothing() {
    let at = Airtable::start().await;
    let d = directory(&at);
    let long = format!("{}@x.io", "a".repeat(250));
    for email in ["", "   ", "a\nb@x.io", "a\u{0}b@x.io", long.as_str()] {
        assert_eq!(
            d.find_by_email(email, soon()).await.unwrap(),
            None,
            "{email:?}"
        );
    }
    assert_eq!(at.total_requests(), 0);
}

#[tokio::test]
async fn several_holders_of_one_email_yield_the_first_in_airtable_order() {
    let at = Airtable::start().await;
    let first = at.insert_person("dup@x.io", "First");
    at.insert_person("DUP@x.io", "Second");
    at.insert_person("dup@x.io", "Third");
    let d = directory(&at);

    let found = d.find_by_email("dup@x.io", soon()).await.unwrap().unwrap();
    assert_eq!(found.id, first);
    assert_eq!(found.name.as_deref(), Some("First"));
    // `maxRecords=2`: enough to notice a duplicate, no more.
    assert_eq!(at.filter_matches(), [2]);
}

#[tokio::test]
async fn records_for_other_emails_are_ignored_whatever_the_server_says() {
    let at = Airtable::start().await;
    let d = directory(&at);
    at.fail_next(
        1,
        canned_ok(json!({"records": [
            {"id": "recEVE00000000000", "createdTime": "2024-01-01T00:00:00.000Z",
             "fields": {"Email": "eve@x.io"}},
            {"id": "recNOEMAIL0000000", "createdTime": "2024-01-01T00:00:00.000Z",
             "fields": {"Name": "ada@x.io"}},
        ]})),
    );
    assert_eq!(d.find_by_email("ada@x.io", soon()).await.unwrap(), None);
}

#[tokio::test]
async fn get_by_id_finds_a_record_or_none() {
    let at = Airtable::start().await;
    let ada = at.insert(json!({
        "Email": "ada@x.io",
        "Name": "Ada",
        "Status": "disabled",
        "Groups": "eng, ops",
    }));
    let d = directory(&at);

    let found = d.get(&ada, soon()).await.unwrap();
    assert_eq!(
        found,
        Some(DirectoryRecord {
            id: ada,
            email: Some("ada@x.io".into()),
            name: Some("Ada".into()),
            status: Some("disabled".into()),
            groups: vec!["eng".into(), "ops".into()],
        })
    );
    assert_eq!(d.get("rec00000000000000", soon()).await.unwrap(), None);
    assert_eq!(at.requests(Kind::Get), 2);

    // Not record ids at all: nothing can hold them, and they never reach
    // the URL path.
    for bad in [
        "",
        "not-a-record",
        "rec0000000000000/",
        "../../v0/other",
        "rec000000000000ü",
    ] {
        assert_eq!(d.get(bad, soon()).await.unwrap(), None, "{bad:?}");
    }
    assert_eq!(at.total_requests(), 2);
}

#[tokio::test]
async fn listing_350_records_returns_each_exactly_once_in_order() {
    let at = Airtable::start().await;
    for i in 0..350 {
        at.insert_person(&format!("p{i}@x.io"), &format!("Person {i}"));
    }
    let d = directory(&at);

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut offset: Option<String> = None;
    loop {
        let (records, next) = d.list_page(offset.as_deref(), soon()).await.unwrap();
        pages.push(records.len());
        seen.extend(records);
        match next {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [100, 100, 100, 50]);
    let ids: Vec<String> = seen.iter().map(|r| r.id.clone()).collect();
    let expected: Vec<String> = at.records().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, expected);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 350);
    assert_eq!(seen[349].email.as_deref(), Some("p349@x.io"));
    assert_eq!(at.requests(Kind::List), 4);
}

#[tokio::test]
async fn an_expired_offset_is_rejected_and_a_fresh_listing_works() {
    let at = Airtable::start().await;
    at.insert_person("ada@x.io", "Ada");
    let d = directory(&at);

    let err = d
        .list_page(Some("itrGone0000000000/recGone0000000000"), soon())
        .await
        .unwrap_err();
    let message = assert_rejected(&err);
    assert!(
        message.contains("LIST_RECORDS_ITERATOR_NOT_AVAILABLE"),
        "{message}"
    );

    let (records, next) = d.list_page(None, soon()).await.unwrap();
    assert_eq!((records.len(), next), (1, None));
}

#[tokio::test]
async fn a_wrong_key_is_rejected_on_every_call() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = directory_with(AirtableConfig {
        api_key: SecretString::from("patSomebodyElse.0000".to_string()),
        ..config(&at)
    });

    let errors = [
        d.find_by_email("ada@x.io", soon()).await.unwrap_err(),
        d.get(&ada, soon()).await.unwrap_err(),
        d.list_page(None, soon()).await.unwrap_err(),
    ];
    for err in &errors {
        let message = assert_rejected(err);
        assert!(message.contains("401 AUTHENTICATION_REQUIRED"), "{message}");
        assert!(!message.contains("patSomebodyElse"), "{message}");
    }
}

#[tokio::test]
async fn an_unknown_base_or_table_is_rejected() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");

    let wrong_table = directory_with(AirtableConfig {
        table: "Peple".into(),
        ..config(&at)
    });
    for err in [
        wrong_table
            .find_by_email("ada@x.io", soon())
            .await
            .unwrap_err(),
        wrong_table.get(&ada, soon()).await.unwrap_err(),
        wrong_table.list_page(None, soon()).await.unwrap_err(),
    ] {
        let message = assert_rejected(&err);
        assert!(message.contains("404 TABLE_NOT_FOUND"), "{message}");
    }

    let wrong_base = directory_with(AirtableConfig {
        base_id: "appNoSuchBase0000".into(),
        ..config(&at)
    });
    for err in [
        wrong_base
            .find_by_email("ada@x.io", soon())
            .await
            .unwrap_err(),
        wrong_base.list_page(None, soon()).await.unwrap_err(),
    ] {
        let message = assert_rejected(&err);
        assert!(message.contains("404 NOT_FOUND"), "{message}");
    }
    // Airtable's answer for an unknown base is the same bare NOT_FOUND as
    // for an unknown record, so `get` alone cannot tell them apart; the
    // other two calls are where a wrong base shows.
    assert_eq!(wrong_base.get(&ada, soon()).await.unwrap(), None);

    // The table's id works as well as its name.
    let by_id = directory_with(AirtableConfig {
        table: TABLE_ID.into(),
        ..config(&at)
    });
    let found = by_id.find_by_email("ada@x.io", soon()).await.unwrap();
    assert_eq!(found.map(|r| r.id), Some(ada));
}

#[tokio::test]
async fn a_formula_naming_a_missing_field_is_rejected() {
    let at = Airtable::start().await;
    at.insert_person("ada@x.io", "Ada");
    let d = directory_with(AirtableConfig {
        fields: FieldNames {
            email: "E-mail".into(),
            ..FieldNames::default()
        },
        ..config(&at)
    });

    let err = d.find_by_email("ada@x.io", soon()).await.unwrap_err();
    let message = assert_rejected(&err);
    assert!(
        message.contains("422 INVALID_FILTER_BY_FORMULA"),
        "{message}"
    );
    assert!(message.contains("Unknown field names: E-mail"), "{message}");
    assert!(!message.contains("ada@x.io"), "{message}");
}

#[tokio::test]
async fn server_errors_are_unavailable_and_not_retried() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = directory(&at);

    at.fail_next(1, Failure::ServerError);
    let err = d.find_by_email("ada@x.io", soon()).await.unwrap_err();
    assert!(
        assert_unavailable(&err).contains("500 SERVER_ERROR"),
        "{err}"
    );
    assert_eq!(at.total_requests(), 1);

    at.fail_next(1, Failure::Unavailable);
    let err = d.get(&ada, soon()).await.unwrap_err();
    assert!(assert_unavailable(&err).contains("503"), "{err}");
    assert_eq!(at.total_requests(), 2);

    at.fail_next(
        1,
        Failure::Canned {
            status: 502,
            body: "<html>Bad Gateway</html>".into(),
        },
    );
    let err = d.list_page(None, soon()).await.unwrap_err();
    assert!(assert_unavailable(&err).contains("502"), "{err}");
    assert_eq!(at.total_requests(), 3);

    assert!(d.get(&ada, soon()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_429_whose_pause_would_pass_the_deadline_fails_at_once() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    // Airtable's real 30 s pause against a 5 s deadline.
    let d = directory(&at);

    at.fail_next(1, Failure::RateLimited);
    let start = Instant::now();
    let err = d
        .find_by_email("ada@x.io", start + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let message = assert_unavailable(&err);
    assert!(message.contains("429 RATE_LIMIT_REACHED"), "{message}");
    assert_eq!(at.total_requests(), 1);

    // The pause belongs to the base, not to one call: nothing is sent until
    // it is over, so the next caller is told at once too.
    let start = Instant::now();
    let err = d
        .get(&ada, start + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_unavailable(&err);
    assert_eq!(at.total_requests(), 1);
}

#[tokio::test]
async fn a_429_is_retried_once_after_the_pause_when_that_fits() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let pause = Duration::from_millis(300);
    let d = directory_with(AirtableConfig {
        rate_limit_wait: pause,
        ..config(&at)
    });

    at.fail_next(1, Failure::RateLimited);
    let start = Instant::now();
    let found = d.find_by_email("ada@x.io", soon()).await.unwrap();
    assert!(start.elapsed() >= pause, "{:?}", start.elapsed());
    assert_eq!(found.map(|r| r.id).as_ref(), Some(&ada));
    assert_eq!(at.requests(Kind::Filter), 2);

    // One retry, not two.
    at.fail_next(2, Failure::RateLimited);
    let err = d.get(&ada, soon()).await.unwrap_err();
    let message = assert_unavailable(&err);
    assert!(message.contains("retry"), "{message}");
    assert_eq!(at.requests(Kind::Get), 2);
}

#[tokio::test]
async fn the_stand_in_enforces_five_per_second_then_a_pause() {
    let at = Airtable::start().await;
    at.insert_person("ada@x.io", "Ada");
    let http = reqwest::Client::new();
    let url = format!("{}/v0/{BASE}/{TABLE}", at.url());
    let mut statuses = Vec::new();
    for _ in 0..REQUESTS_PER_SECOND + 2 {
        let resp = http.get(&url).bearer_auth(KEY).send().await.unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["errors"][0]["error"], "RATE_LIMIT_REACHED");
        }
    }
    // Fired back to back, well within a second on any machine.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(at.rate_limited(), 2);

    // A paced client arriving during the pause meets it, and with a
    // deadline shorter than the pause gives up at once.
    let d = directory(&at);
    let start = Instant::now();
    let err = d
        .find_by_email("ada@x.io", start + Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_unavailable(&err);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn the_client_never_sends_more_than_five_requests_in_any_second() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = Arc::new(directory(&at));

    let start = Instant::now();
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let (d, ada) = (d.clone(), ada.clone());
            tokio::spawn(async move {
                match i % 3 {
                    0 => d
                        .find_by_email("ada@x.io", soon())
                        .await
                        .map(|r| r.is_some()),
                    1 => d.get(&ada, soon()).await.map(|r| r.is_some()),
                    _ => d.list_page(None, soon()).await.map(|(r, _)| r.len() == 1),
                }
            })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().unwrap());
    }
    assert_eq!(at.total_requests(), 12);
    assert_eq!(at.rate_limited(), 0);
    let busiest = at.max_requests_in_one_second();
    assert!(
        busiest <= REQUESTS_PER_SECOND,
        "{busiest} requests within one second"
    );
    // Twelve requests, one slot of just over 200 ms between each.
    assert!(
        start.elapsed() >= Duration::from_millis(11 * 200),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_rate_limit_slot_past_the_deadline_is_unavailable_without_a_request() {
    let at = Airtable::start().await;
    at.insert_person("ada@x.io", "Ada");
    let d = directory_with(AirtableConfig {
        requests_per_second: 1,
        ..config(&at)
    });
    assert!(d.find_by_email("ada@x.io", soon()).await.unwrap().is_some());

    // The next slot is about a second away.
    let start = Instant::now();
    let err = d
        .find_by_email("ada@x.io", start + Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(assert_unavailable(&err).contains("rate limit"), "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(at.total_requests(), 1);
}

#[tokio::test]
async fn slow_answers_are_unavailable_at_the_timeout_or_the_deadline() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    at.set_latency(Duration::from_secs(3));

    let impatient = directory_with(AirtableConfig {
        timeout: Duration::from_millis(200),
        ..config(&at)
    });
    let start = Instant::now();
    let err = impatient
        .find_by_email("ada@x.io", soon())
        .await
        .unwrap_err();
    assert!(assert_unavailable(&err).contains("timed out"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // A deadline nearer than the timeout is the one that counts.
    let d = directory(&at);
    let start = Instant::now();
    let err = d
        .get(&ada, start + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(assert_unavailable(&err).contains("deadline"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // A deadline already gone sends nothing.
    let before = at.total_requests();
    let err = d.list_page(None, Instant::now()).await.unwrap_err();
    assert_unavailable(&err);
    assert_eq!(at.total_requests(), before);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let d = directory_with(AirtableConfig {
        api_url: url,
        ..AirtableConfig::new(BASE, TABLE, SecretString::from(KEY.to_string()))
    });

    let err = d.find_by_email("ada@x.io", soon()).await.unwrap_err();
    assert!(
        assert_unavailable(&err).contains("connection failed"),
        "{err}"
    );
    assert!(!err.to_string().contains("ada@x.io"), "{err}");
}

#[tokio::test]
async fn malformed_answers_are_rejected() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = directory(&at);

    at.fail_next(
        1,
        Failure::Canned {
            status: 200,
            body: "<html>surprise</html>".into(),
        },
    );
    assert_rejected(&d.find_by_email("ada@x.io", soon()).await.unwrap_err());

    at.fail_next(1, canned_ok(json!({"records": "nope"})));
    assert_rejected(&d.list_page(None, soon()).await.unwrap_err());

    at.fail_next(1, canned_ok(json!({"records": [{"fields": {}}]})));
    assert_rejected(&d.list_page(None, soon()).await.unwrap_err());

    // An answer about some other record is no answer about this one.
    at.fail_next(
        1,
        canned_ok(json!({"id": "recSomeoneElse000", "fields": {"Email": "eve@x.io"}})),
    );
    assert_rejected(&d.get(&ada, soon()).await.unwrap_err());

    // A listing whose next offset is the one just used would never end.
    at.fail_next(
        1,
        canned_ok(json!({"records": [], "offset": "itrSame/recSame"})),
    );
    assert_rejected(
        &d.list_page(Some("itrSame/recSame"), soon())
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
async fn fields_follow_the_configured_names_and_airtable_types() {
    let at = Airtable::start().await;
    let ada = at.insert(json!({
        "E-mail {work}": "ada@x.io",
        "Full name": "Ada",
        "State": "on leave",
        "Teams": "eng, ops ,",
    }));
    let bob = at.insert(json!({
        "E-mail {work}": "bob@x.io",
        "State": true,
        "Teams": ["a", "b"],
    }));
    let cy = at.insert(json!({
        "E-mail {work}": "cy@x.io",
        "Full name": "",
        "State": null,
        "Teams": [],
    }));
    let d = directory_with(AirtableConfig {
        fields: FieldNames {
            email: "E-mail {work}".into(),
            name: "Full name".into(),
            status: "State".into(),
            groups: "Teams".into(),
        },
        ..config(&at)
    });

    let record =
        |id: &str, email: &str, name: Option<&str>, status: Option<&str>, groups: &[&str]| {
            DirectoryRecord {
                id: id.to_string(),
                email: Some(email.to_string()),
                name: name.map(str::to_string),
                status: status.map(str::to_string),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            }
        };
    assert_eq!(
        d.find_by_email("ada@x.io", soon()).await.unwrap(),
        Some(record(
            &ada,
            "ada@x.io",
            Some("Ada"),
            Some("on leave"),
            &["eng", "ops"]
        ))
    );
    // A checkbox where a status belongs still shows, as its JSON text, for
    // the caller to refuse; it does not vanish into "no status".
    assert_eq!(
        d.find_by_email("bob@x.io", soon()).await.unwrap(),
        Some(record(&bob, "bob@x.io", None, Some("true"), &["a", "b"]))
    );
    // Airtable leaves empty fields out altogether.
    assert_eq!(
        d.get(&cy, soon()).await.unwrap(),
        Some(record(&cy, "cy@x.io", None, None, &[]))
    );
    assert!(
        at.invalid_formulas().is_empty(),
        "{:?}",
        at.invalid_formulas()
    );
}

#[tokio::test]
async fn the_api_key_never_appears_in_debug_or_errors() {
    let at = Airtable::start().await;
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = directory(&at);
    assert!(!format!("{d:?}").contains(KEY));
    assert!(!format!("{d:#?}").contains(KEY));
    assert!(!format!("{:?}", config(&at)).contains(KEY));

    let mut errors = Vec::new();
    at.fail_next(1, Failure::ServerError);
    errors.push(d.get(&ada, soon()).await.unwrap_err());
    // A server that echoes the key back must not get it into our errors.
    at.fail_next(
        1,
        Failure::Canned {
            status: 401,
            body: json!({"error": {"type": "AUTHENTICATION_REQUIRED",
                                   "message": format!("bad token {KEY}")}})
            .to_string(),
        },
    );
    errors.push(d.find_by_email("ada@x.io", soon()).await.unwrap_err());
    at.fail_next(
        1,
        Failure::Canned {
            status: 429,
            body: json!({"errors": [{"error": "RATE_LIMIT_REACHED", "message": KEY}]}).to_string(),
        },
    );
    errors.push(d.list_page(None, soon()).await.unwrap_err());
    at.fail_next(1, canned_ok(json!({"records": KEY})));
    let fresh = directory(&at);
    errors.push(fresh.list_page(None, soon()).await.unwrap_err());
    at.set_latency(Duration::from_secs(3));
    let impatient = directory_with(AirtableConfig {
        timeout: Duration::from_millis(100),
        ..config(&at)
    });
    errors.push(impatient.get(&ada, soon()).await.unwrap_err());

    for err in &errors {
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }
}

#[tokio::test]
async fn the_constructor_refuses_what_cannot_work() {
    let at = Airtable::start().await;
    let ok = || config(&at);
    let bad = [
        AirtableConfig {
            api_url: "ftp://api.airtable.com".into(),
            ..ok()
        },
        AirtableConfig {
            api_url: "not a url".into(),
            ..ok()
        },
        AirtableConfig {
            api_url: "https://x.io/?a=b".into(),
            ..ok()
        },
        AirtableConfig {
            api_url: String::new(),
            ..ok()
        },
        AirtableConfig {
            base_id: String::new(),
            ..ok()
        },
        AirtableConfig {
            base_id: "https://airtable.com/appX/tblY".into(),
            ..ok()
        },
        AirtableConfig {
            table: " ".into(),
            ..ok()
        },
        AirtableConfig {
            api_key: SecretString::from(String::new()),
            ..ok()
        },
        AirtableConfig {
            api_key: SecretString::from("pat with spaces".to_string()),
            ..ok()
        },
        AirtableConfig {
            timeout: Duration::ZERO,
            ..ok()
        },
        AirtableConfig {
            requests_per_second: 0,
            ..ok()
        },
        AirtableConfig {
            fields: FieldNames {
                email: "a}b}".into(),
                ..FieldNames::default()
            },
            ..ok()
        },
        AirtableConfig {
            fields: FieldNames {
                email: r"a\b".into(),
                ..FieldNames::default()
            },
            ..ok()
        },
        AirtableConfig {
            fields: FieldNames {
                groups: String::new(),
                ..FieldNames::default()
            },
            ..ok()
        },
    ];
    for cfg in bad {
        let shown = format!("{cfg:?}");
        let err = AirtableDirectory::new(cfg).expect_err(&shown);
        assert!(!err.contains(KEY), "{err}");
    }

    // A trailing slash on the URL is harmless.
    let ada = at.insert_person("ada@x.io", "Ada");
    let d = directory_with(AirtableConfig {
        api_url: format!("{}/", at.url()),
        ..ok()
    });
    assert!(d.get(&ada, soon()).await.unwrap().is_some());
    assert_eq!(at.requests(Kind::Get), 1);
}
