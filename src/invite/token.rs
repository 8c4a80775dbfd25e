//! An invitation's secret: 256 random bits, shown only in the link
//! (base64url, 43 characters); the database keeps its SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A token as it appears in a link. Never logged: `Debug` shows nothing.
pub(crate) struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// The SHA-256 of a token: what is stored and looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenHash(pub(crate) Vec<u8>);

/// Characters in a token: 32 bytes in unpadded base64url.
const LEN: usize = 43;

impl Token {
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token from a link's path; `None` for anything that could not
    /// have been made by [`Token::random`].
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == LEN
            && URL_SAFE_NO_PAD
                .decode(s)
                .is_ok_and(|b| b.len() == 32 && URL_SAFE_NO_PAD.encode(&b) == s);
        ok.then(|| Self(s.to_owned()))
    }

    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).to_vec())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_parse_back_and_differ() {
        let (a, b) = (Token::random(), Token::random());
        assert_eq!(a.as_str().len(), LEN);
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(Token::parse(a.as_str()).unwrap().hash(), a.hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().0.len(), 32);
    }

    #[test]
    fn anything_else_is_refused() {
        let good = Token::random();
        let s = good.as_str();
        for bad in [
            "",
            &s[1..],
            &format!("{s}A"),
            &format!("{}=", &s[..42]),
            &format!("{}+", &s[..42]),
            "../../../../../../../../../../../etc/passwd",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(format!("{good:?}"), "Token([redacted])");
    }
}
