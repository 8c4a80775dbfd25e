//! Airtable formulas, built only from parts whose escaping is known, and
//! the shape of a record id.

/// `LOWER(TRIM({field})) = LOWER('email')`. TRIM on the field forgives
/// stray spaces typed into the directory; LOWER on both sides makes the
/// comparison Airtable's own case folding.
pub(super) fn email_formula(field_ref: &str, email: &str) -> String {
    format!(
        "LOWER(TRIM({field_ref})) = LOWER({})",
        string_literal(email)
    )
}

/// A single-quoted formula string: every `\` and `'` escaped with a
/// backslash, so the literal ends exactly where we say it does.
fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `{name}` with a closing brace escaped as `\}`. Names this cannot carry
/// faithfully are refused rather than guessed at.
pub(super) fn field_ref(name: &str) -> Result<String, &'static str> {
    if name.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if name.contains('\\') {
        return Err("it contains a backslash");
    }
    if name.matches('}').count() > 1 {
        return Err("Airtable cannot reference a field name with more than one '}'");
    }
    Ok(format!("{{{}}}", name.replace('}', "\\}")))
}

/// `rec` and 14 letters or digits: the shape of every Airtable record id.
pub(super) fn is_record_id(s: &str) -> bool {
    s.len() == 17 && s.starts_with("rec") && s[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape_quotes_and_backslashes() {
        assert_eq!(string_literal("ada@x.io"), "'ada@x.io'");
        assert_eq!(string_literal("o'brien@x.io"), r"'o\'brien@x.io'");
        assert_eq!(string_literal(r#"a\"b@x.io"#), r#"'a\\"b@x.io'"#);
        assert_eq!(string_literal(r"x\"), r"'x\\'");
        assert_eq!(string_literal(r"\'"), r"'\\\''");
    }

    #[test]
    fn field_references_escape_one_brace_and_refuse_the_rest() {
        assert_eq!(field_ref("Email").unwrap(), "{Email}");
        assert_eq!(field_ref("Work {email}").unwrap(), r"{Work {email\}}");
        assert!(field_ref("a}}").is_err());
        assert!(field_ref(r"a\b").is_err());
        assert!(field_ref("a\nb").is_err());
    }

    #[test]
    fn the_formula_has_one_shape() {
        assert_eq!(
            email_formula("{Email}", "x') , TRUE() , ('@x.io"),
            r"LOWER(TRIM({Email})) = LOWER('x\') , TRUE() , (\'@x.io')"
        );
    }

    #[test]
    fn record_ids_are_rec_and_fourteen_alphanumerics() {
        assert!(is_record_id("rec0123456789abcD"));
        for bad in [
            "rec0123456789abc",
            "rec0123456789abcDE",
            "tbl0123456789abcD",
            "rec0123456789ab/D",
            "rec0123456789abü",
            "",
        ] {
            assert!(!is_record_id(bad), "{bad:?}");
        }
    }
}
