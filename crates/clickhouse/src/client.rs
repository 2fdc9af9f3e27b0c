//! ClickHouse's HTTP interface: a query or an insert, tried on each
//! configured server in turn from the last one that answered.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use rollupd_store::config::ClickHouseConfig;

/// Why a request failed (on every server it was tried on: the last one's).
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("clickhouse {url}: {message}")]
    Transport { url: String, message: String },
    #[error("clickhouse {url}: HTTP {status}: {body}")]
    Server {
        url: String,
        status: u16,
        body: String,
    },
}

pub struct Client {
    agent: ureq::Agent,
    urls: Vec<String>,
    /// `user=...&password=...&` for every request (ClickHouse 18.16 takes
    /// credentials as URL parameters).
    auth: String,
    /// Where the next request starts.
    next: AtomicUsize,
}

/// An error body is cut to this much in messages.
const MAX_ERROR_BODY: usize = 2048;

impl Client {
    pub fn new(cfg: &ClickHouseConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .timeout_connect(Some(cfg.timeout.min(Duration::from_secs(5))))
            .build()
            .into();
        let mut auth = String::new();
        if let Some(u) = &cfg.user {
            auth.push_str("user=");
            auth.push_str(&encode(u));
            auth.push('&');
        }
        if let Some(p) = &cfg.password {
            auth.push_str("password=");
            auth.push_str(&encode(p.expose()));
            auth.push('&');
        }
        Client {
            agent,
            urls: cfg
                .urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            auth,
            next: AtomicUsize::new(0),
        }
    }

    /// The configured servers.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Runs `sql` (its text as the body) on server `url`; the answer's body.
    pub fn query_on(&self, url: &str, sql: &str) -> Result<String, ClickHouseError> {
        self.post(url, "", sql.as_bytes())
    }

    /// Runs `sql` on the first server that answers; the answer's body.
    pub fn query(&self, sql: &str) -> Result<String, ClickHouseError> {
        self.on_any(|url| self.post(url, "", sql.as_bytes()))
    }

    /// Inserts `rows` (TabSeparated) into `table` (`db.table`), on the first
    /// server that takes them. Distributed inserts are synchronous: once this
    /// returns, the rows are on their shards, not in a queue of the server's.
    pub fn insert(&self, table: &str, rows: &[u8]) -> Result<(), ClickHouseError> {
        let query = format!(
            "insert_distributed_sync=1&query={}",
            encode(&format!("INSERT INTO {table} FORMAT TabSeparated"))
        );
        self.on_any(|url| self.post(url, &query, rows)).map(drop)
    }

    /// `f` on each server in turn, from the last one that answered, until
    /// one does; a server's own refusal (an HTTP error: bad SQL, a missing
    /// table) is the answer, not a reason to try the next.
    fn on_any(
        &self,
        f: impl Fn(&str) -> Result<String, ClickHouseError>,
    ) -> Result<String, ClickHouseError> {
        let n = self.urls.len();
        let start = self.next.load(Relaxed);
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            match f(&self.urls[i]) {
                Ok(body) => {
                    self.next.store(i, Relaxed);
                    return Ok(body);
                }
                Err(e @ ClickHouseError::Server { status, .. }) if status < 500 => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClickHouseError::Transport {
            url: String::new(),
            message: "no servers configured".into(),
        }))
    }

    fn post(&self, url: &str, query: &str, body: &[u8]) -> Result<String, ClickHouseError> {
        let full = format!("{url}/?{}{query}", self.auth);
        let transport = |e: ureq::Error| ClickHouseError::Transport {
            url: url.to_string(),
            message: e.to_string(),
        };
        let mut r = self.agent.post(&full).send(body).map_err(transport)?;
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(transport)?;
        if status == 200 {
            Ok(text)
        } else {
            let mut body = text;
            if body.len() > MAX_ERROR_BODY {
                let mut cut = MAX_ERROR_BODY;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            Err(ClickHouseError::Server {
                url: url.to_string(),
                status,
                body: body.trim().to_string(),
            })
        }
    }
}

/// A URL query value, percent-encoded.
fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("INSERT INTO g.p FORMAT TabSeparated"),
            "INSERT+INTO+g.p+FORMAT+TabSeparated"
        );
        assert_eq!(encode("a&b=c"), "a%26b%3Dc");
    }

    #[test]
    fn a_server_that_is_not_there_is_a_transport_error_naming_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let c = Client::new(&ClickHouseConfig {
            urls: vec![url.clone()],
            timeout: Duration::from_secs(2),
            ..ClickHouseConfig::default()
        });
        let e = c.insert("g.t", b"x\n").unwrap_err().to_string();
        assert!(e.contains(&url), "{e}");
    }
}
