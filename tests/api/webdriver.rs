//! A small WebDriver client (the W3C protocol is JSON over HTTP) driving
//! Debian's headless Chromium through `chromedriver`, for the console's
//! browser tests. Waits poll the page for a condition; nothing sleeps for
//! a fixed time.

use base64::Engine;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key W3C WebDriver gives element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for a page condition may take.
const WAIT: Duration = Duration::from_secs(20);

fn find_program(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// chromedriver on a free loopback port, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    driver: Driver,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Browser {
        let chromedriver = find_program(&["chromedriver"]).expect(
            "chromedriver not found: scripts/test.sh installs it (Debian: apt-get install chromium chromium-driver)",
        );
        let chromium = find_program(&["chromium", "chromium-browser"]).expect(
            "chromium not found: scripts/test.sh installs it (Debian: apt-get install chromium)",
        );
        let port = crate::helpers::free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("rosterd-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).unwrap();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _profile: tempdir::Dir(profile.clone()),
        };
        let ready = crate::helpers::poll(WAIT, || async {
            match driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        assert!(ready, "chromedriver did not become ready");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,860",
                    "--hide-scrollbars", format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let r: Value = driver
            .http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Browser { driver, session }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.session);
        let mut req = self.driver.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        r["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({"url": url})).await;
        assert!(v.is_null(), "navigate to {url}: {v}");
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_owned()
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if Instant::now() >= deadline {
                let source = self.get("/source").await;
                panic!(
                    "no element {css} on {}; the page:\n{source}",
                    self.url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text_of(&self, element: &str) -> String {
        let v = self.get(&format!("/element/{element}/text")).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text_of(&e).await
    }

    /// Waits until the page's visible text contains `needle`.
    pub async fn wait_text(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = match self.try_find("body").await {
                Some(b) => self.text_of(&b).await,
                None => String::new(),
            };
            if body.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} never appeared on {}; the page says:\n{body}",
                needle,
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the browser is on a URL whose path and query end
    /// with `suffix`.
    pub async fn wait_url(&self, suffix: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            if url.ends_with(suffix) {
                return;
            }
            assert!(Instant::now() < deadline, "at {url}, expected …{suffix}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        let v = self
            .post(&format!("/element/{e}/value"), json!({"text": text}))
            .await;
        assert!(v.is_null(), "typing into {css}: {v}");
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        let v = self.post(&format!("/element/{e}/click"), json!({})).await;
        assert!(v.is_null(), "clicking {css}: {v}");
    }

    /// Runs `script` in the page (WebDriver's, not the page's: the
    /// console's CSP allows no script of its own).
    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .unwrap()
    }
}

/// Ends the WebDriver session, so Chromium exits, even when a test
/// fails; chromedriver is killed after it.
impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.driver.base, self.session);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
            });
        })
        .join();
    }
}
