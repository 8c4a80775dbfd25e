//! What the load generators (benches/ingest.rs, benches/lookup.rs,
//! benches/listing.rs) share: per-task and per-phase results, percentiles,
//! error chains, the `--summary` file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What one phase (a concurrency level) measured.
pub struct PhaseResult {
    /// Requests sent.
    pub count: usize,
    pub elapsed: Duration,
    /// Sorted ascending.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
}

impl PhaseResult {
    /// A phase of `count` requests from what each of its tasks saw; a task
    /// that died (its error) counts as one error.
    pub fn gather(
        count: usize,
        elapsed: Duration,
        tasks: impl IntoIterator<Item = Result<TaskResult, String>>,
    ) -> Self {
        let mut result = PhaseResult {
            count,
            elapsed,
            latencies: Vec::with_capacity(count),
            errors: 0,
            error_kinds: BTreeMap::new(),
        };
        for task in tasks {
            match task {
                Ok(t) => {
                    result.latencies.extend(t.latencies);
                    result.errors += t.errors;
                    for (k, n) in t.error_kinds {
                        *result.error_kinds.entry(k).or_default() += n;
                    }
                }
                Err(e) => {
                    result.errors += 1;
                    *result
                        .error_kinds
                        .entry(format!("task failed: {e}"))
                        .or_default() += 1;
                }
            }
        }
        result.latencies.sort_unstable();
        result
    }

    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        ms(self.latencies[i])
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(f64::NAN, |d| ms(*d))
    }
}

/// An error with its causes (reqwest's own message rarely says what failed).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// Appends `text` to the `--summary` file, if one was given.
pub fn append_summary(path: Option<&std::path::Path>, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let Some(path) = path else { return Ok(()) };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write --summary {}: {e}", path.display()))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one task saw.
#[derive(Default)]
pub struct TaskResult {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub error_kinds: BTreeMap<String, usize>,
}

impl TaskResult {
    pub fn error(&mut self, kind: String) {
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
    }
}

/// Sends `request`, records its latency, and returns its JSON body when it
/// answered 200; anything else is recorded as an error of the task.
pub async fn send_for_json(
    request: reqwest::RequestBuilder,
    out: &mut TaskResult,
) -> Option<serde_json::Value> {
    let t0 = Instant::now();
    let response = request.send().await;
    let (status, bytes) = match response {
        Ok(r) => {
            let status = r.status();
            match r.bytes().await {
                Ok(b) => (status, b),
                Err(e) => {
                    out.latencies.push(t0.elapsed());
                    out.error(format!("reading the response: {}", chain(&e)));
                    return None;
                }
            }
        }
        Err(e) => {
            out.latencies.push(t0.elapsed());
            out.error(format!("request failed: {}", chain(&e)));
            return None;
        }
    };
    out.latencies.push(t0.elapsed());
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(&bytes);
        out.error(format!(
            "HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
        return None;
    }
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            out.error(format!("200 with a body that is not JSON: {e}"));
            None
        }
    }
}

/// Kinds of error shown per phase; the rest are counted.
const ERROR_SAMPLES: usize = 5;

/// The most frequent kinds of error of a phase, so invalid figures say why.
pub fn print_errors(r: &PhaseResult) {
    let mut kinds: Vec<_> = r.error_kinds.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1));
    for (kind, n) in kinds.iter().take(ERROR_SAMPLES) {
        println!("    {n:>6} x {kind}");
    }
    if kinds.len() > ERROR_SAMPLES {
        println!(
            "    ... and {} other kinds of error",
            kinds.len() - ERROR_SAMPLES
        );
    }
}
