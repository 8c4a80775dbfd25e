//! Airtable Web API client for one table of one base, read-only.
//!
//! Behaviour of Airtable that this module relies on:
//! - "The API is limited to 5 requests per second per base. If you exceed
//!   this rate, you will receive a 429 status code and will need to wait 30
//!   seconds before subsequent requests will succeed." (Airtable's API docs,
//!   rate limits). The 429 body is
//!   `{"errors":[{"error":"RATE_LIMIT_REACHED","message":"Rate limit
//!   exceeded. Please try again later"}]}`.
//! - Other errors are `{"error":{"type","message"}}`, except a bare
//!   `{"error":"NOT_FOUND"}` for a record id (or base) that does not exist.
//! - Formula string literals take backslash escapes: `\'` inside single
//!   quotes, `\\` for a backslash (pyAirtable's `quoted()` does exactly
//!   this). A field reference is `{name}`, with `\}` for a closing brace;
//!   Airtable cannot reference a name with more than one `}`, nor is it
//!   clear what a backslash means there, so such names are refused up front.
//! - Fields that are empty are left out of a record's `fields` altogether.
//! - `GET …/{table}/{recordId}` does not check that the record belongs to
//!   that table: record ids are unique per base, and a record of another
//!   table in the same base comes back as if it were ours.
//! - List offsets expire: a stale one is a 422
//!   `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`, and the listing has to restart.
//!
//! No retries happen here apart from the one after a 429 that Airtable
//! itself asks for: the caller owns its deadline and decides what a failure
//! means for the person waiting on it.

mod answers;
mod check;
mod formula;
mod pace;

use super::{DirectoryError, DirectoryRecord};
use crate::http_client::{self, HttpClient, Refusal, Transport};
use answers::{is_record_not_found, parse_body, ListJson, RecordJson};
use check::Checked;
use formula::{email_formula, is_record_id};
use pace::Pace;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use secrecy::SecretString;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

pub use pace::Budget;

pub(crate) const DEFAULT_API_URL: &str = "https://api.airtable.com";
/// Airtable's documented limit per base.
pub(crate) const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
/// How long Airtable wants callers to stay away after a 429.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Airtable's largest page.
const PAGE_SIZE: &str = "100";
/// Two, not one: a second match is worth a warning, since it means the
/// directory holds the same person twice.
const MAX_EMAIL_MATCHES: &str = "2";
/// No valid email is longer (RFC 5321 path limit); anything longer can only
/// miss, and would only make the URL longer.
const MAX_EMAIL_CHARS: usize = 254;

/// Column names in the Airtable table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    pub email: String,
    pub name: String,
    pub status: String,
    pub groups: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        Self {
            email: "Email".into(),
            name: "Name".into(),
            status: "Status".into(),
            groups: "Groups".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AirtableConfig {
    /// Without `/v0`; a path prefix (for a proxy) is kept.
    pub api_url: String,
    pub base_id: String,
    /// Table name or `tbl…` id, unencoded.
    pub table: String,
    pub api_key: SecretString,
    pub fields: FieldNames,
    pub requests_per_second: u32,
    pub rate_limit_wait: Duration,
    /// Bounds each request; a caller's deadline can cut it shorter.
    pub timeout: Duration,
}

impl AirtableConfig {
    /// Airtable's public API with the documented limits.
    pub fn new(base_id: &str, table: &str, api_key: SecretString) -> Self {
        Self {
            api_url: DEFAULT_API_URL.into(),
            base_id: base_id.into(),
            table: table.into(),
            api_key,
            fields: FieldNames::default(),
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            rate_limit_wait: DEFAULT_RATE_LIMIT_WAIT,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

pub struct AirtableDirectory {
    /// `{api_url}/v0/{base}/{table}`, segments percent-encoded.
    table_url: Url,
    /// The same, unencoded and without the host, for error messages.
    table_path: String,
    key: SecretString,
    fields: FieldNames,
    /// The email field reference, escaped once here.
    email_ref: String,
    http: HttpClient,
    pace: Pace,
}

/// Written by hand so that neither the key nor the HTTP client's internals
/// can end up in a log line.
impl fmt::Debug for AirtableDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirtableDirectory")
            .field("table", &self.table_path)
            .field("fields", &self.fields)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl AirtableDirectory {
    pub fn new(cfg: AirtableConfig) -> Result<Self, String> {
        let checked = Checked::of(&cfg)?;
        let http = HttpClient::new("Airtable", cfg.timeout)?;
        Ok(Self {
            table_url: http_client::join(&checked.url, ["v0", &checked.base, &checked.table]),
            table_path: format!("/v0/{}/{}", checked.base, checked.table),
            key: cfg.api_key,
            fields: cfg.fields,
            email_ref: checked.email_ref,
            http,
            pace: Pace::new(cfg.requests_per_second, cfg.rate_limit_wait),
        })
    }

    /// The record whose email field equals `email`, ignoring case and
    /// surrounding whitespace. Several matches: the first in Airtable's
    /// order, with a warning.
    pub async fn find_by_email(
        &self,
        email: &str,
        budget: impl Into<Budget>,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        observe(
            "find_by_email",
            self.find_by_email_uncounted(email, budget.into()),
            found,
        )
        .await
    }

    async fn find_by_email_uncounted(
        &self,
        email: &str,
        budget: Budget,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        let wanted = email.trim();
        // Nobody's email is empty, over-long or holds control characters, so
        // these cannot match; not sending them also keeps line breaks out of
        // the formula, whose escapes for them are not documented.
        if wanted.is_empty()
            || wanted.chars().count() > MAX_EMAIL_CHARS
            || wanted.chars().any(char::is_control)
        {
            return Ok(None);
        }
        let formula = email_formula(&self.email_ref, wanted);
        // The query holds the email; messages name only the path.
        let what = format!("GET {} (email filter)", self.table_path);
        let query = [
            ("filterByFormula", formula.as_str()),
            ("maxRecords", MAX_EMAIL_MATCHES),
        ];
        let body = self
            .fetch(&what, &self.table_url, &query, budget)
            .await
            .map_err(DirectoryError::from)?;
        let list: ListJson = parse_body(&what, &body)?;
        let returned = list.records.len();
        let wanted = wanted.to_lowercase();
        // Defence in depth: the formula should have done this already, but
        // whatever the server sends back is checked before it is believed.
        let mut matches = list
            .records
            .into_iter()
            .map(|r| answers::record(&self.fields, r))
            .filter(|r| {
                r.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase() == wanted)
            });
        let first = matches.next();
        let others: Vec<String> = matches.map(|r| r.id).collect();
        match &first {
            Some(record) if !others.is_empty() => tracing::warn!(
                record = %record.id,
                others = ?others,
                "several directory records hold one email; using the first"
            ),
            None if returned > 0 => tracing::warn!(
                returned,
                "directory answered an email filter with records for other emails; ignored"
            ),
            _ => {}
        }
        Ok(first)
    }

    /// One record by id; `None` when Airtable has no such record. Airtable
    /// answers for any record of the base, whatever its table.
    pub async fn get(
        &self,
        record_id: &str,
        budget: impl Into<Budget>,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        observe("get", self.get_uncounted(record_id, budget.into()), found).await
    }

    async fn get_uncounted(
        &self,
        record_id: &str,
        budget: Budget,
    ) -> Result<Option<DirectoryRecord>, DirectoryError> {
        // Anything else cannot be a record id, and must not reach the path.
        if !is_record_id(record_id) {
            return Ok(None);
        }
        let mut url = self.table_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(record_id);
        }
        let what = format!("GET {}/{record_id}", self.table_path);
        match self.fetch(&what, &url, &[], budget).await {
            Ok(body) => {
                let record: RecordJson = parse_body(&what, &body)?;
                if record.id != record_id {
                    return Err(DirectoryError::Rejected(format!(
                        "{what}: answered with record {:?}",
                        record.id
                    )));
                }
                Ok(Some(answers::record(&self.fields, record)))
            }
            Err(Failure::Api(e)) if is_record_not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One page of up to 100 records in Airtable's order, and the offset of
    /// the next page (`None` after the last). An offset that has expired is
    /// `Rejected` with `LIST_RECORDS_ITERATOR_NOT_AVAILABLE` in the message:
    /// start again without one.
    pub async fn list_page(
        &self,
        offset: Option<&str>,
        budget: impl Into<Budget>,
    ) -> Result<(Vec<DirectoryRecord>, Option<String>), DirectoryError> {
        observe(
            "list",
            self.list_page_uncounted(offset, budget.into()),
            |_| "ok",
        )
        .await
    }

    async fn list_page_uncounted(
        &self,
        offset: Option<&str>,
        budget: Budget,
    ) -> Result<(Vec<DirectoryRecord>, Option<String>), DirectoryError> {
        let what = format!("GET {} (list)", self.table_path);
        let mut query = vec![("pageSize", PAGE_SIZE)];
        if let Some(offset) = offset {
            query.push(("offset", offset));
        }
        let body = self
            .fetch(&what, &self.table_url, &query, budget)
            .await
            .map_err(DirectoryError::from)?;
        let list: ListJson = parse_body(&what, &body)?;
        let next = list.offset.filter(|o| !o.is_empty());
        // A server that hands back the offset it was given would keep a
        // caller's listing loop going forever.
        if next.is_some() && next.as_deref() == offset {
            return Err(DirectoryError::Rejected(format!(
                "{what}: the next offset is the one just used"
            )));
        }
        let records = list
            .records
            .into_iter()
            .map(|r| answers::record(&self.fields, r))
            .collect();
        Ok((records, next))
    }

    /// One request, paced and retried once after a 429 if the pause that
    /// Airtable asks for fits before the deadline. `what` names the request
    /// in errors; the query (an email, perhaps) never does.
    async fn fetch(
        &self,
        what: &str,
        url: &Url,
        query: &[(&str, &str)],
        budget: Budget,
    ) -> Result<Vec<u8>, Failure> {
        let deadline = budget.deadline;
        if Instant::now() >= deadline {
            // Checked first so that a call already too late takes no slot.
            return Err(transport(what, Transport::DeadlinePassed));
        }
        let mut retried = false;
        loop {
            self.pace.sit_out_pause(what, deadline).await?;
            self.pace.queue(what, budget).await?;
            match self.send(what, url, query, deadline).await {
                Err(Failure::Api(e)) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                    crate::metrics::directory_rate_limited();
                    let until = self.pace.pause_after_429();
                    if retried || until >= deadline {
                        return Err(Failure::Other(DirectoryError::Unavailable(format!(
                            "{}; Airtable asks for a {} s pause, {}",
                            e.describe(),
                            self.pace.rate_limit_wait.as_secs_f32(),
                            if retried {
                                "and the one retry was refused too"
                            } else {
                                "which would pass the deadline"
                            }
                        ))));
                    }
                    retried = true;
                }
                other => return other,
            }
        }
    }

    async fn send(
        &self,
        what: &str,
        url: &Url,
        query: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let mut req = self
            .http
            .request(Method::GET, url.clone())
            .headers(self.secret_headers());
        if !query.is_empty() {
            req = req.query(query);
        }
        let answer = self
            .http
            .send(req, Some(deadline))
            .await
            .map_err(|t| transport(what, t))?;
        let status = answer.status;
        tracing::debug!(request = %what, status = status.as_u16(), "airtable call");
        if status.is_success() {
            Ok(answer.body)
        } else {
            Err(Failure::Api(answers::refusal(
                what,
                status,
                &answer.body,
                &self.key,
            )))
        }
    }

    fn secret_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Validated in `new`, so this cannot fail.
        if let Some(v) = http_client::bearer(&self.key) {
            headers.insert(AUTHORIZATION, v);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers
    }
}

/// Counts and times one call by its operation and how it ended; what was
/// asked for (an email, a record id) never becomes a label.
async fn observe<T>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, DirectoryError>>,
    ok_label: fn(&T) -> &'static str,
) -> Result<T, DirectoryError> {
    let started = std::time::Instant::now();
    let r = call.await;
    let result = match &r {
        Ok(v) => ok_label(v),
        Err(DirectoryError::Unavailable(_)) => "unavailable",
        Err(DirectoryError::Rejected(_)) => "rejected",
        Err(DirectoryError::Busy { .. }) => "busy",
    };
    crate::metrics::directory_call(operation, result, started.elapsed());
    r
}

fn found(record: &Option<DirectoryRecord>) -> &'static str {
    if record.is_some() {
        "found"
    } else {
        "not_found"
    }
}

enum Failure {
    /// Airtable answered with a non-2xx status.
    Api(Refusal),
    /// Everything else, already classified.
    Other(DirectoryError),
}

impl From<Failure> for DirectoryError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Api(e) if e.is_transient() => DirectoryError::Unavailable(e.describe()),
            Failure::Api(e) => DirectoryError::Rejected(e.describe()),
            Failure::Other(e) => e,
        }
    }
}

fn unavailable(what: &str, why: &str) -> Failure {
    Failure::Other(DirectoryError::Unavailable(format!("{what}: {why}")))
}

fn transport(what: &str, t: Transport) -> Failure {
    match t {
        Transport::Build => Failure::Other(DirectoryError::Rejected(format!("{what}: {t}"))),
        _ => unavailable(what, &t.to_string()),
    }
}
