//! Bearer tokens for the login service (and later operators), compared in
//! constant time.

use axum::http::{header, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The accepted tokens, kept only as SHA-256 digests: comparing digests of
/// equal length leaks neither a token's bytes nor its length.
#[derive(Clone, Default)]
pub struct BearerTokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BearerTokens({} configured)", self.digests.len())
    }
}

impl BearerTokens {
    /// Comma-separated tokens; blanks are ignored.
    pub fn parse(list: Option<&SecretString>) -> Self {
        let digests = list
            .map(|l| {
                l.expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Sha256::digest(t.as_bytes()).into())
                    .collect()
            })
            .unwrap_or_default();
        Self { digests }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when the `Authorization: Bearer …` header carries a configured
    /// token. Every token is compared, with no early exit.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut ok = Choice::from(0);
        for d in &self.digests {
            ok |= d.ct_eq(&digest);
        }
        bool::from(ok)
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
}
