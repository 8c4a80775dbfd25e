//! `user.details`: what a profile says beyond email, name, status and
//! groups — a SCIM User's name parts, display name, external id, e-mail
//! addresses and `userName` as sent. Part of the profile register, so it
//! is written and replaced with it (newest wins like everything else).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest string kept in any detail.
const MAX_DETAIL: usize = 256;
/// Most addresses in `emails`.
const MAX_EMAILS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "NameParts::is_empty")]
    pub name: NameParts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<EmailEntry>,
}

/// RFC 7643 §4.1.1 `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
}

impl NameParts {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn strings(&self) -> [&Option<String>; 6] {
        [
            &self.formatted,
            &self.family_name,
            &self.given_name,
            &self.middle_name,
            &self.honorific_prefix,
            &self.honorific_suffix,
        ]
    }
}

/// One of RFC 7643 §4.1.2 `emails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailEntry {
    pub value: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

impl Details {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `user.details` of an event: `None` when absent, null or empty.
    pub(crate) fn parse(v: &Value) -> Result<Option<Self>, String> {
        if v.is_null() {
            return Ok(None);
        }
        let d: Self = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        d.check()?;
        Ok((!d.is_empty()).then_some(d))
    }

    fn check(&self) -> Result<(), String> {
        if self.emails.len() > MAX_EMAILS {
            return Err(format!("emails: at most {MAX_EMAILS} addresses"));
        }
        let strings = [&self.user_name, &self.external_id, &self.display_name]
            .into_iter()
            .chain(self.name.strings())
            .flatten()
            .chain(self.emails.iter().flat_map(|e| {
                std::iter::once(&e.value)
                    .chain(e.kind.iter())
                    .chain(e.display.iter())
            }));
        for s in strings {
            if s.chars().count() > MAX_DETAIL {
                return Err(format!(
                    "each value must be at most {MAX_DETAIL} characters"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_refuses_the_unknown() {
        let v = json!({"userName": "Ann@X.io", "name": {"givenName": "Ann", "familyName": "Lee"},
                       "emails": [{"value": "ann@x.io", "type": "work", "primary": true}]});
        let d = Details::parse(&v).unwrap().unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), v);
        assert_eq!(Details::parse(&json!({})).unwrap(), None);
        assert_eq!(Details::parse(&Value::Null).unwrap(), None);
        assert!(Details::parse(&json!({"password": "x"})).is_err());
        assert!(Details::parse(&json!({"displayName": "x".repeat(257)})).is_err());
        assert!(Details::parse(&json!({"emails": vec![json!({"value": "a"}); 11]})).is_err());
    }
}
