//! PATCH as Okta and Entra ID send it, and its refusals.

use super::*;
use serde_json::json;

const USER: Schema = Schema {
    attrs: &[
        ("userName", &[], false),
        ("name", &["formatted", "familyName", "givenName"], false),
        ("displayName", &[], false),
        ("emails", &["value", "type", "primary"], true),
        ("active", &[], false),
    ],
    read_only: &["id", "meta", "groups"],
};

fn run(start: Value, ops: Value) -> Result<Value, ScimError> {
    let mut res = start.as_object().unwrap().clone();
    let body = json!({"schemas": [PATCH_SCHEMA], "Operations": ops});
    let ops = operations(body.as_object().unwrap())?;
    apply(&USER, &mut res, &ops)?;
    Ok(Value::Object(res))
}

#[test]
fn okta_and_entra_shapes() {
    let start = json!({"userName": "a@x.io", "active": true, "name": {"givenName": "A", "familyName": "B"}});
    let r = run(
        start.clone(),
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .unwrap();
    assert_eq!(r["active"], json!(false));
    let r = run(
        start.clone(),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .unwrap();
    assert_eq!(r["active"], json!("False"));
    let r = run(
        start.clone(),
        json!([{"op": "Add", "value": {"name.givenName": "Z", "displayName": "Z B"}}]),
    )
    .unwrap();
    assert_eq!(r["name"], json!({"givenName": "Z", "familyName": "B"}));
    assert_eq!(r["displayName"], json!("Z B"));
    let r = run(
        start.clone(),
        json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x.io"}]),
    )
    .unwrap();
    assert_eq!(r["emails"], json!([{"type": "work", "value": "w@x.io"}]));
    let r = run(
        r,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "v@x.io"}]),
    )
    .unwrap();
    assert_eq!(r["emails"], json!([{"type": "work", "value": "v@x.io"}]));
    let r = run(
        r,
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
    )
    .unwrap();
    assert!(r.get("emails").is_none());
    let r = run(
        start.clone(),
        json!([{"op": "remove", "path": "name.givenName"}]),
    )
    .unwrap();
    assert_eq!(r["name"], json!({"familyName": "B"}));
    let r = run(start.clone(), json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "x"}, {"op": "add", "path": "password", "value": "x"}])).unwrap();
    assert_eq!(r, start);
}

#[test]
fn refusals_carry_their_scim_type() {
    let start = json!({"userName": "a@x.io"});
    let t = |ops: Value| run(start.clone(), ops).unwrap_err().scim_type;
    assert_eq!(
        t(json!([{"op": "replace", "path": "id", "value": "x"}])),
        Some("mutability")
    );
    assert_eq!(t(json!([{"op": "remove"}])), Some("noTarget"));
    assert_eq!(
        t(json!([{"op": "move", "path": "x"}])),
        Some("invalidSyntax")
    );
    assert_eq!(
        t(json!([{"op": "add", "path": "emails[type eq", "value": 1}])),
        Some("invalidPath")
    );
    assert_eq!(
        t(json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "x"}}])),
        Some("noTarget")
    );
    assert_eq!(
        t(json!([{"op": "add", "path": "userName"}])),
        Some("invalidSyntax")
    );
}
