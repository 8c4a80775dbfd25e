//! The filter grammar, by example.

use super::*;
use serde_json::json;

fn p(s: &str) -> Filter {
    Filter::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn path(attr: &str, sub: Option<&str>) -> AttrPath {
    AttrPath {
        attr: attr.into(),
        sub: sub.map(Into::into),
    }
}

#[test]
fn parses_the_rfc_examples() {
    for s in [
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        "title pr",
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work"].value eq "a@b.c""#,
        r#"USERNAME EQ "x" AND Active Eq True"#,
    ] {
        p(s);
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let f = p(r#"a eq "1" or b eq "2" and not (c pr)"#);
    let a = Filter::Compare(path("a", None), Op::Eq, Literal::Str("1".into()));
    let b = Filter::Compare(path("b", None), Op::Eq, Literal::Str("2".into()));
    let c = Filter::Not(Box::new(Filter::Present(path("c", None))));
    assert_eq!(
        f,
        Filter::Or(Box::new(a), Box::new(Filter::And(Box::new(b), Box::new(c))))
    );
}

#[test]
fn strings_are_json_strings() {
    let f = p(r#"displayName eq "a \"quoted\" \\ name\u00e9 ) or x pr""#);
    assert_eq!(
        f,
        Filter::Compare(
            path("displayname", None),
            Op::Eq,
            Literal::Str("a \"quoted\" \\ nameé ) or x pr".into())
        )
    );
}

#[test]
fn refuses_what_is_not_a_filter() {
    for s in [
        "",
        "userName",
        "userName eq",
        r#"userName xx "a""#,
        r#"userName eq "a" and"#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        r#"userName eq 'a'"#,
        r#"userName eq "unterminated"#,
        r#"userName eq "a" ; drop table roster"#,
        r#"a.b.c eq "x""#,
        r#"urn:other:thing eq "x""#,
        r#"emails[type eq "work""#,
        r#"userName eq 1e999"#,
        "\u{0}",
    ] {
        assert!(Filter::parse(s).is_err(), "{s:?} parsed");
    }
}

#[test]
fn hostile_sizes_are_refused_not_overflowed() {
    let deep = format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Filter::parse(&deep).unwrap_err().contains("longer"));
    let deep = format!("{}a pr{}", "(".repeat(1_000), ")".repeat(1_000));
    assert!(Filter::parse(&deep).unwrap_err().contains("deeper"));
    let nots = format!("{}a pr{}", "not (".repeat(500), ")".repeat(500));
    assert!(Filter::parse(&nots).is_err());
    let wide = vec!["a pr"; 100].join(" and ");
    assert!(Filter::parse(&wide).unwrap_err().contains("comparisons"));
    let huge = vec!["a pr"; 10_000].join(" or ");
    assert!(Filter::parse(&huge).is_err());
}

#[test]
fn matches_one_element() {
    let work = json!({"value": "A@Example.com", "type": "work", "primary": true});
    assert!(p(r#"type eq "WORK""#).matches(&work));
    assert!(p(r#"value co "example" and primary eq true"#).matches(&work));
    assert!(!p(r#"type eq "home""#).matches(&work));
    assert!(p(r#"not (type eq "home")"#).matches(&work));
    assert!(p("display pr").matches(&json!({"display": "x"})));
    assert!(!p("display pr").matches(&json!({"display": ""})));
    assert!(p(r#"value eq "abc""#).matches(&json!("ABC")));
}
