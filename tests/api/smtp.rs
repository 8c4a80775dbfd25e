//! A real SMTP server for the tests: `tests/smtp/smtpd.py` (aiosmtpd) in a
//! child process, writing each message it accepts to a directory. It can
//! be stopped and started again on its port (a server that is down) and
//! told to answer the next messages with 451 (a server that refuses).
//!
//! The Python it runs is `ROSTERD_SMTPD_PYTHON` (`make test` sets it to
//! one with aiosmtpd, installing Debian's `python3-aiosmtpd` if needed),
//! else `/usr/bin/python3`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Smtp {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Smtp {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("rosterd-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Self {
            port: super::helpers::free_port(),
            dir,
            child: None,
        };
        s.up().await;
        s
    }

    /// `SMTP_URL` for this server (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) {
        let python =
            std::env::var("ROSTERD_SMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/smtpd.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (see ROSTERD_SMTPD_PYTHON)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP server starts within 20 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"), "smtpd.py did not start");
        self.child = Some(child);
    }

    /// The server goes away: connections are refused until [`Smtp::restart`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        self.up().await;
    }

    /// The next `n` messages are answered `451 Try again later`.
    pub fn refuse_next(&self, n: u32) {
        std::fs::write(self.dir.join("refuse"), n.to_string()).unwrap();
    }

    /// Every message accepted so far, oldest first, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Waits (polling, up to `limit`) until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<String> {
        let arrived = super::helpers::poll(limit, || async { self.messages().len() >= n }).await;
        let got = self.messages();
        assert!(
            arrived,
            "expected {n} messages within {limit:?}, got {}",
            got.len()
        );
        got
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The text of a message's `text/plain` (or `text/html`) part, decoded.
pub fn part(message: &str, content_type: &str) -> String {
    let start = message
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part in {message}"));
    let rest = &message[start..];
    let (headers, body) = rest
        .split_once("\r\n\r\n")
        .or_else(|| rest.split_once("\n\n"))
        .unwrap();
    let body = body.split("\r\n--").next().unwrap();
    let encoding = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_string(),
    }
}

fn quoted_printable(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() + 1 {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The invitation link in a message's plain-text part.
pub fn link_in(message: &str) -> String {
    let text = part(message, "text/plain");
    text.split_whitespace()
        .find(|w| w.contains("/invite/"))
        .unwrap_or_else(|| panic!("no invitation link in {text}"))
        .to_string()
}

/// A header's value (unfolded), e.g. `To`.
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
}
