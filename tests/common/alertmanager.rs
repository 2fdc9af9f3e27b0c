//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! `./dev setup`) on a free loopback port with its own config and storage
//! in a temp dir, clustering off. Dropping the guard kills it.
//!
//! Its one route goes to a receiver with no integrations: alerts are held
//! and listed by its API, nothing is sent anywhere.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{http_get, POLL};

/// Where the binary is: `$ROLLUPD_ALERTMANAGER`, else Debian's name on PATH.
fn binary() -> String {
    std::env::var("ROLLUPD_ALERTMANAGER").unwrap_or_else(|_| "prometheus-alertmanager".into())
}

const CONFIG: &str = "route:
  receiver: hold
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hold
";

pub(crate) struct Alertmanager {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one and waits until `/-/ready` answers 200 (it took under
    /// 3 s here). A port taken between choosing and binding is retried.
    pub(crate) fn start() -> Alertmanager {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(am) => return am,
                Err(log) => last_log = log,
            }
        }
        panic!("Alertmanager did not start; its log:\n{last_log}");
    }

    fn try_start() -> Result<Alertmanager, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("am.yml");
        std::fs::write(&config, CONFIG).expect("write am.yml");
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).expect("storage dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log_path = dir.path().join("alertmanager.log");
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log_path).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): `./dev setup` installs Debian's prometheus-alertmanager",
                    binary()
                )
            });
        let mut am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if am.child.try_wait().expect("try_wait").is_some() {
                return Err(am.log());
            }
            if Self::ready(&am.url) {
                return Ok(am);
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after 15 s\n{}", am.log()));
            }
            std::thread::sleep(POLL * 5);
        }
    }

    fn ready(url: &str) -> bool {
        ureq::get(&format!("{url}/-/ready"))
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(1)))
            .build()
            .call()
            .is_ok_and(|r| r.status() == 200)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET /api/v2/alerts`: the alerts it holds that have not ended
    /// (active, silenced or inhibited).
    pub(crate) fn alerts(&self) -> Vec<Value> {
        let (status, body) = http_get(&format!("{}/api/v2/alerts", self.url));
        assert_eq!(status, 200, "GET /api/v2/alerts: {body}");
        serde_json::from_str::<Value>(&body)
            .expect("JSON alert list")
            .as_array()
            .expect("a list")
            .clone()
    }

    /// The alerts whose label `name` is `value`.
    pub(crate) fn alerts_with(&self, name: &str, value: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["labels"][name] == value)
            .collect()
    }

    /// Polls until `f` holds for the alert list; panics with the list and
    /// Alertmanager's log at the deadline.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let alerts = self.alerts();
            if f(&alerts) {
                return alerts;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; alerts: {alerts:#?}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL * 5);
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
