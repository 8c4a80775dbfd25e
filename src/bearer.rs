//! Bearer tokens for the login service and for operators, compared in
//! constant time.

use axum::http::{header, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::state::OperatorRole as Role;

/// The accepted tokens, kept only as SHA-256 digests: comparing digests of
/// equal length leaks neither a token's bytes nor its length. Each token has
/// a name (the operator's, for the audit log; "login" for login tokens) and,
/// for operators, a role.
#[derive(Clone, Default)]
pub struct BearerTokens {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    name: String,
    digest: [u8; 32],
    role: Role,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerTokens({} configured)", self.entries.len())
    }
}

/// Operators' tokens must be hard to guess.
const MIN_NAMED_TOKEN_LEN: usize = 16;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl BearerTokens {
    /// Comma-separated tokens; blanks are ignored.
    pub fn parse(list: Option<&SecretString>) -> Self {
        let entries = list
            .map(|l| {
                l.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Entry {
                        name: "login".to_owned(),
                        digest: digest(t),
                        role: Role::Operator,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { entries }
    }

    /// Operators' tokens: comma-separated `name:token`, or
    /// `name:token:viewer` for one who may read and change nothing
    /// (`name:token:operator` is the default spelt out). Errors name the
    /// entry's position (and its name once known), never the token.
    pub fn parse_named(list: Option<&SecretString>) -> Result<Self, String> {
        Self::parse_entries(list, MIN_NAMED_TOKEN_LEN, true)
    }

    /// Comma-separated `name:token` pairs of at least `min_len` characters,
    /// with no roles (the token is everything after the first `:`).
    pub fn parse_named_min(list: Option<&SecretString>, min_len: usize) -> Result<Self, String> {
        Self::parse_entries(list, min_len, false)
    }

    fn parse_entries(
        list: Option<&SecretString>,
        min_len: usize,
        roles: bool,
    ) -> Result<Self, String> {
        let Some(list) = list else {
            return Ok(Self::default());
        };
        let mut entries: Vec<Entry> = Vec::new();
        let items = list.expose_secret().split(',').map(str::trim);
        for (i, item) in items.filter(|t| !t.is_empty()).enumerate() {
            let n = i + 1;
            let (name, rest) = item
                .split_once(':')
                .ok_or_else(|| format!("entry {n} is not of the form name:token"))?;
            // A trailing `:viewer`/`:operator` is the role; a token may
            // hold other colons.
            let (token, role) = match rest.rsplit_once(':') {
                Some((token, word)) if roles => match word.trim().parse::<Role>() {
                    Ok(role) => (token, role),
                    Err(_) => (rest, Role::Operator),
                },
                _ => (rest, Role::Operator),
            };
            let (name, token) = (name.trim(), token.trim());
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
            if !name_ok {
                return Err(format!(
                    "entry {n}: the name must be 1-64 characters of A-Z a-z 0-9 . _ @ -"
                ));
            }
            if token.len() < min_len {
                return Err(format!(
                    "entry {n} ({name}): the token must be at least {min_len} characters"
                ));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(format!("entry {n}: the name {name} is used twice"));
            }
            entries.push(Entry {
                name: name.to_owned(),
                digest: digest(token),
                role,
            });
        }
        Ok(Self { entries })
    }

    /// The name of the configured token the `Authorization: Bearer …`
    /// header carries. Every token is compared, with no early exit.
    pub(crate) fn identify(&self, headers: &HeaderMap) -> Option<&str> {
        self.identify_role(headers).map(|(name, _)| name)
    }

    /// [`Self::identify`], with the token's role.
    pub(crate) fn identify_role(&self, headers: &HeaderMap) -> Option<(&str, Role)> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        self.identify_token(token)
    }

    /// The name and role of the configured token `token` is, however it
    /// arrived (a bearer header, the console's sign-in form). Every token
    /// is compared, with no early exit.
    pub(crate) fn identify_token(&self, token: &str) -> Option<(&str, Role)> {
        let presented = digest(token.trim());
        let mut found = None;
        for e in &self.entries {
            let hit = bool::from(e.digest.ct_eq(&presented));
            found = if hit {
                Some((e.name.as_str(), e.role))
            } else {
                found
            };
        }
        found
    }

    /// True when the header carries a configured token.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        self.identify(headers).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn admits_only_configured_tokens() {
        let t = BearerTokens::parse(Some(&SecretString::from(
            "alpha-token, beta-token,".to_owned(),
        )));
        assert!(t.admits(&headers("Bearer alpha-token")));
        assert!(t.admits(&headers("Bearer beta-token")));
        assert!(!t.admits(&headers("Bearer gamma-token")));
        assert!(!t.admits(&headers("Bearer ")));
        assert!(!t.admits(&headers("Basic alpha-token")));
        assert!(!t.admits(&HeaderMap::new()));
        assert!(!BearerTokens::default().admits(&headers("Bearer ")));
        assert_eq!(format!("{t:?}"), "BearerTokens(2 configured)");
    }

    #[test]
    fn named_tokens_identify_their_operator() {
        let t = BearerTokens::parse_named(Some(&SecretString::from(
            "alice:alice-token-0123456789, bob:bob-token-0123456789abc".to_owned(),
        )))
        .unwrap();
        assert_eq!(
            t.identify(&headers("Bearer alice-token-0123456789")),
            Some("alice")
        );
        assert_eq!(
            t.identify(&headers("Bearer bob-token-0123456789abc")),
            Some("bob")
        );
        assert_eq!(t.identify(&headers("Bearer alice-token-012345678")), None);
        assert_eq!(t.identify(&headers("alice-token-0123456789")), None);
    }

    #[test]
    fn named_token_errors_never_show_the_token() {
        let parse = |s: &str| BearerTokens::parse_named(Some(&SecretString::from(s.to_owned())));
        for (input, expected) in [
            (
                "no-colon-secret-value-here",
                "entry 1 is not of the form name:token",
            ),
            (
                "ok:0123456789abcdef, :0123456789abcdef",
                "entry 2: the name must be",
            ),
            ("a b:0123456789abcdef", "entry 1: the name must be"),
            (
                "ops:short-secret",
                "entry 1 (ops): the token must be at least 16",
            ),
            (
                "ops:0123456789abcdef,ops:0123456789abcdeg",
                "the name ops is used twice",
            ),
        ] {
            let err = parse(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
            assert!(
                !err.contains("secret") && !err.contains("0123456789"),
                "{err}"
            );
        }
        assert!(parse("").unwrap().entries.is_empty());
    }

    #[test]
    fn a_trailing_role_makes_a_viewer() {
        let t = BearerTokens::parse_named(Some(&SecretString::from(
            "ann:ann-token-0123456789:viewer, bob:bob:token-0123456789, cy:cy-token-0123456789:operator".to_owned(),
        )))
        .unwrap();
        let who = |token: &str| t.identify_token(token);
        assert_eq!(who("ann-token-0123456789"), Some(("ann", Role::Viewer)));
        assert_eq!(who("ann-token-0123456789:viewer"), None);
        assert_eq!(who("bob:token-0123456789"), Some(("bob", Role::Operator)));
        assert_eq!(who("cy-token-0123456789"), Some(("cy", Role::Operator)));
        // SCIM tokens have no roles: the whole rest is the token.
        let scim = BearerTokens::parse_named_min(
            Some(&SecretString::from(
                "okta:okta-token-0123456789:viewer".to_owned(),
            )),
            16,
        )
        .unwrap();
        assert_eq!(
            scim.identify_token("okta-token-0123456789:viewer"),
            Some(("okta", Role::Operator))
        );
    }
}
