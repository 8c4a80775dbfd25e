//! The plumbing that rosterd's clients of other services (the Airtable
//! directory, the Supabase admin API) share: base URLs, secret headers,
//! timeouts and deadlines, and what may be said about a failed exchange.
//!
//! It knows none of those services and nothing of the app: each client
//! turns a [`Transport`] failure or a [`Refusal`] into its own error type,
//! and decides what to retry.
//!
//! What reaches an error message from here is chosen, never passed
//! through: reqwest's own Display names the full URL, query included (an
//! email, for look-ups), so only the kind of a transport failure is kept;
//! a server's own words are kept only with the key redacted and cut short.

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Error text from a server is for humans; a proxy's HTML page is not.
const MAX_SERVER_TEXT_CHARS: usize = 300;

/// `raw` as the root of an API: an http or https URL with a host and
/// without a query or fragment. A path prefix (for a proxy) is kept. `var`
/// names the setting in messages.
pub(crate) fn base_url(var: &str, raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{var} is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{var} must be an http or https URL, not {}:",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{var} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{var} must not carry a query or fragment"));
    }
    if url.cannot_be_a_base() {
        return Err(format!("{var} cannot take a path"));
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded (a `/` inside one
/// too); a trailing slash on `base` does not make an empty segment.
pub(crate) fn join<'a>(base: &Url, segments: impl IntoIterator<Item = &'a str>) -> Url {
    let mut url = base.clone();
    // A URL that `base_url` accepted can always take a path.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Checks that a key can travel in a header, so that a bad one fails
/// start-up instead of every request. `var` names the setting; the key
/// itself never appears in the message.
pub(crate) fn check_header_secret(var: &str, secret: &SecretString) -> Result<(), String> {
    let key = secret.expose_secret();
    if key.is_empty() {
        return Err(format!("{var} is empty"));
    }
    if HeaderValue::from_str(key).is_err() || key.chars().any(char::is_whitespace) {
        return Err(format!("{var} contains characters not allowed in a header"));
    }
    Ok(())
}

/// A header value that reqwest's and hyper's own debug output will not
/// show. `None` only for a value that [`check_header_secret`] refuses.
pub(crate) fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// `Bearer {secret}`, kept out of debug output as [`sensitive`] is.
pub(crate) fn bearer(secret: &SecretString) -> Option<HeaderValue> {
    sensitive(&format!("Bearer {}", secret.expose_secret()))
}

/// Text a server sent for humans, fit to pass on: cut short, and with
/// `secret` redacted. No server should echo the key, but if one ever does
/// it must not travel further in our errors.
pub(crate) fn server_text(text: &str, secret: &SecretString) -> String {
    let secret = secret.expose_secret();
    let text = if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "[redacted]")
    };
    text.chars().take(MAX_SERVER_TEXT_CHARS).collect()
}

/// `Retry-After` as delta-seconds, or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// One reqwest client whose every request is bounded by `timeout`, and by
/// the caller's deadline where there is one.
#[derive(Clone)]
pub(crate) struct HttpClient {
    http: reqwest::Client,
    timeout: Duration,
}

impl HttpClient {
    /// `service` names the other end in messages ("Airtable").
    pub(crate) fn new(service: &str, timeout: Duration) -> Result<Self, String> {
        if timeout.is_zero() {
            return Err(format!(
                "the {service} request timeout must be greater than zero"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, timeout })
    }

    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `req` and reads the whole answer, whatever its status. With a
    /// `deadline`, nothing is sent once it has passed, and the request is
    /// cut there if that comes before the timeout.
    pub(crate) async fn send(
        &self,
        mut req: RequestBuilder,
        deadline: Option<Instant>,
    ) -> Result<Answer, Transport> {
        let mut cut_by_deadline = false;
        if let Some(deadline) = deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Transport::DeadlinePassed);
            }
            cut_by_deadline = remaining < self.timeout;
            req = req.timeout(remaining.min(self.timeout));
        }
        let transport = |e: reqwest::Error| Transport::of(&e, cut_by_deadline);
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// A whole answer, of any status.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Why no answer came, and nothing more: see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The caller's deadline had passed before anything was sent.
    DeadlinePassed,
    /// No answer within the request timeout.
    TimedOut,
    /// No answer before the caller's deadline, which came before the timeout.
    CutByDeadline,
    Connect,
    /// The request could not be built: a fault of ours, which trying again
    /// will not mend.
    Build,
    /// The answer broke off or could not be decoded.
    Body,
    Other,
}

impl Transport {
    fn of(e: &reqwest::Error, cut_by_deadline: bool) -> Self {
        if e.is_timeout() {
            if cut_by_deadline {
                Self::CutByDeadline
            } else {
                Self::TimedOut
            }
        } else if e.is_connect() {
            Self::Connect
        } else if e.is_builder() {
            Self::Build
        } else if e.is_body() || e.is_decode() {
            Self::Body
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeadlinePassed => "deadline reached before sending",
            Self::TimedOut => "timed out",
            Self::CutByDeadline => "no answer before the deadline",
            Self::Connect => "connection failed",
            Self::Build => "could not build the request",
            Self::Body => "response body interrupted",
            Self::Other => "request failed",
        })
    }
}

/// A non-2xx answer, reduced to what may be shown: the status, the
/// server's error code and message (made safe by [`server_text`]) and its
/// `Retry-After`. Each client reads its own service's error bodies into one.
pub(crate) struct Refusal {
    /// The request, as its client names it in messages.
    pub(crate) what: String,
    pub(crate) status: StatusCode,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) retry_after: Option<Duration>,
}

impl Refusal {
    /// Worth trying again later: the server is down, slow or busy.
    pub(crate) fn is_transient(&self) -> bool {
        self.status.is_server_error()
            || self.status == StatusCode::REQUEST_TIMEOUT
            || self.status == StatusCode::TOO_MANY_REQUESTS
    }

    /// `{what}: HTTP {status} {code}`, the code only when there is one.
    pub(crate) fn headline(&self) -> String {
        let mut line = format!("{}: HTTP {}", self.what, self.status.as_u16());
        if let Some(code) = &self.code {
            line.push_str(&format!(" {code}"));
        }
        line
    }

    /// The headline, then the server's message when there is one.
    pub(crate) fn describe(&self) -> String {
        let mut line = self.headline();
        if let Some(text) = &self.message {
            line.push_str(&format!(": {text}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_with_a_host_and_keep_their_path() {
        for bad in [
            "ftp://x.io",
            "not a url",
            "https://x.io/?a=b",
            "https://x.io/#f",
            "",
        ] {
            assert!(base_url("X_URL", bad).is_err(), "{bad:?}");
        }
        let err = base_url("X_URL", "ftp://x.io").unwrap_err();
        assert_eq!(err, "X_URL must be an http or https URL, not ftp:");
        let root = base_url("X_URL", " https://x.io/proxy/ ").unwrap();
        assert_eq!(
            join(&root, ["v0", "app1", "A/B c"]).as_str(),
            "https://x.io/proxy/v0/app1/A%2FB%20c"
        );
        let bare = base_url("X_URL", "http://x.io").unwrap();
        assert_eq!(join(&bare, ["auth", "v1"]).as_str(), "http://x.io/auth/v1");
    }

    #[test]
    fn secrets_are_checked_marked_and_redacted() {
        let key = SecretString::from("k3y".to_string());
        assert!(check_header_secret("K", &key).is_ok());
        for bad in ["", "a b", "a\nb"] {
            let err = check_header_secret("K", &SecretString::from(bad.to_string()));
            assert!(err.is_err(), "{bad:?}");
        }
        assert!(bearer(&key).unwrap().is_sensitive());
        assert_eq!(server_text("no k3y here", &key), "no [redacted] here");
        assert_eq!(server_text(&"x".repeat(500), &key).len(), 300);
    }

    #[test]
    fn retry_after_reads_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
