//! Request signatures (docs/contract.md §3): the plain `X-Signature` scheme and
//! Standard Webhooks. Verification runs on the raw body, before parsing.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

type HmacSha256 = Hmac<Sha256>;

pub(crate) const MIN_KEY_BYTES: usize = 16;
const WHSEC_PREFIX: &str = "whsec_";

/// One signing key. Its bytes never reach `Debug`, logs or errors.
#[derive(Clone)]
pub struct Key(SecretSlice<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a whsec_ secret must be base64 after the prefix")]
    BadBase64,
    #[error("a key must be at least {MIN_KEY_BYTES} bytes, this one has {0}")]
    TooShort(usize),
}

impl Key {
    /// `whsec_<base64>` is the base64 of the key bytes; anything else is
    /// its own UTF-8 bytes.
    pub fn parse(secret: &str) -> Result<Self, KeyError> {
        let bytes = match secret.strip_prefix(WHSEC_PREFIX) {
            Some(b64) => B64.decode(b64).map_err(|_| KeyError::BadBase64)?,
            None => secret.as_bytes().to_vec(),
        };
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(Self(bytes.into()))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.expose_secret()).expect("HMAC takes keys of any length")
    }

    /// `X-Signature` value for the plain scheme: lower-case hex, `sha256=` prefixed.
    pub fn sign_plain(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// `webhook-signature` value for Standard Webhooks: `v1,<base64>`.
    pub(crate) fn sign_standard(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(self.standard_mac(msg_id, timestamp, body))
        )
    }

    fn standard_mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The configured keys (several during a rotation) and the clock tolerance.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<Key>,
    tolerance_secs: i64,
}

/// Deliberately carries no detail: the client is told only "invalid_signature".
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rejected;

impl Verifier {
    pub fn new(keys: Vec<Key>, tolerance_secs: u64) -> Self {
        Self {
            keys,
            tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
        }
    }

    /// Admits the request when any configured key signed it under either
    /// scheme. Standard Webhooks headers take precedence when present.
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), Rejected> {
        if headers.contains_key("webhook-signature") {
            self.verify_standard(headers, body, now_unix)
        } else if let Some(sig) = headers.get("x-signature") {
            self.verify_plain(sig.as_bytes(), body)
        } else {
            Err(Rejected)
        }
    }

    fn verify_plain(&self, header: &[u8], body: &[u8]) -> Result<(), Rejected> {
        let hex_sig = header.strip_prefix(b"sha256=").unwrap_or(header);
        let claimed = hex::decode(hex_sig).map_err(|_| Rejected)?;
        if claimed.len() != 32 {
            return Err(Rejected);
        }
        // Every key is tried, with no early exit, so timing does not tell
        // which key (if any) matched.
        let mut ok = Choice::from(0);
        for key in &self.keys {
            let mut mac = key.mac();
            mac.update(body);
            ok |= mac.finalize().into_bytes().as_slice().ct_eq(&claimed);
        }
        accept(ok)
    }

    fn verify_standard(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Rejected> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(Rejected)
        };
        let msg_id = text("webhook-id")?;
        let timestamp: i64 = text("webhook-timestamp")?.parse().map_err(|_| Rejected)?;
        let signatures = text("webhook-signature")?;
        if (now - timestamp).abs() > self.tolerance_secs {
            return Err(Rejected);
        }
        let claimed: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| B64.decode(b64).ok())
            .filter(|sig| sig.len() == 32)
            .collect();
        let mut ok = Choice::from(0);
        for key in &self.keys {
            let expected = key.standard_mac(msg_id, timestamp, body);
            for sig in &claimed {
                ok |= expected.as_slice().ct_eq(sig);
            }
        }
        accept(ok)
    }
}

fn accept(ok: Choice) -> Result<(), Rejected> {
    if bool::from(ok) {
        Ok(())
    } else {
        Err(Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parsing() {
        assert_eq!(Key::parse("short").unwrap_err(), KeyError::TooShort(5));
        assert!(Key::parse("0123456789abcdef").is_ok());
        assert_eq!(Key::parse("whsec_!!!").unwrap_err(), KeyError::BadBase64);
        // 12 bytes of key behind a long-looking whsec_ string is still too short.
        let short = format!("whsec_{}", B64.encode([7u8; 12]));
        assert_eq!(Key::parse(&short).unwrap_err(), KeyError::TooShort(12));
        assert_eq!(
            format!("{:?}", Key::parse("0123456789abcdef").unwrap()),
            "Key([redacted])"
        );
    }
}
