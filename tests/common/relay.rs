//! `rollupd relay` as a test starts it: in front of daemons, on loopback
//! ports, its log in a file.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Daemon, BIN};

pub(crate) struct Relay {
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay's listeners.
pub(crate) struct Listeners {
    pub statsd_udp: std::net::SocketAddr,
    /// With `tcp`: statsd and carbon over TCP.
    pub tcp: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

/// Starts `rollupd relay` in front of `a` and `b` (members "a" and "b");
/// with `tcp`, it listens for statsd and carbon over TCP too.
pub(crate) fn start_relay(
    dir: &std::path::Path,
    a: &Daemon,
    b: &Daemon,
    tcp: bool,
) -> (Relay, Listeners) {
    let carbon = tcp;
    let member = |name: &str, d: &Daemon| {
        let mut m = format!(
            "[[relay.member]]\nname = \"{name}\"\nstatsd = \"{}\"\nadmin = \"{}\"\n",
            d.udp.unwrap(),
            d.admin
        );
        if carbon {
            m.push_str(&format!("carbon = \"{}\"\n", d.carbon_tcp));
        }
        m
    };
    let mut config = String::from(
        "[relay]\nstatsd_udp = \"127.0.0.1:0\"\nhealth_interval = \"100ms\"\n\
         stats_prefix = \"relayself\"\nstats_interval = \"200ms\"\n",
    );
    if carbon {
        config.push_str("carbon_tcp = \"127.0.0.1:0\"\nstatsd_tcp = \"127.0.0.1:0\"\n");
    }
    config.push_str(&member("a", a));
    config.push_str(&member("b", b));
    let path = dir.join("relay.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.join("relay.log");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("relay")
        .env("ROLLUPD_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the relay");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let relay = Relay { child, log };
    let mut addr_after = |prefix: &str| -> std::net::SocketAddr {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?}"))
            .parse()
            .unwrap()
    };
    let statsd_udp = addr_after("relay listening on ");
    let tcp = tcp.then(|| {
        let statsd = addr_after("relay statsd tcp on ");
        (statsd, addr_after("relay carbon on "))
    });
    (relay, Listeners { statsd_udp, tcp })
}

/// Sends SIGTERM; the relay must exit cleanly within 10 s, its counts
/// logged. Returns its log.
pub(crate) fn stop_relay(relay: &mut Relay) -> String {
    // SAFETY: signalling our own child process.
    #[allow(unsafe_code)] // kill(2), through libc
    let rc = unsafe {
        libc::kill(
            libc::pid_t::try_from(relay.child.id()).expect("a pid fits pid_t"),
            libc::SIGTERM,
        )
    };
    assert_eq!(rc, 0);
    let status = super::wait_child(&mut relay.child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&relay.log).unwrap();
    assert!(text.contains("relay: counts"), "{text}");
    text
}
