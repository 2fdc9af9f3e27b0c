//! The HTTP port is bounded like the others: a connection that sends no
//! complete request head (or no more of its body) within
//! `http_read_timeout` is closed, and
//! connections past `max_http_connections` are closed unread and counted,
//! while the port goes on serving.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{wait_until, Daemon, Options};

const SECS_5: Duration = Duration::from_secs(5);

/// `GET /health` on a new connection; the status line, if any came.
fn health(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, SECS_5).ok()?;
    s.set_read_timeout(Some(SECS_5)).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: rollupd\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.lines().next().map(str::to_string)
}

/// True once the peer has closed `s` (bounded wait).
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn http_connections_without_a_request_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .server("http_read_timeout = \"1s\""),
    );
    // Never a byte; a request head trickled and never ended.
    let mut silent = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    let mut trickle = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    trickle.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(200));
        let _ = trickle.write_all(b"X-Slow: 1\r\n");
    }
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)),
        "a silent HTTP connection was kept"
    );
    assert!(
        closed_within(&mut trickle, Duration::from_secs(10)),
        "a trickled request head was waited for"
    );
    // A request whose body stops coming is not waited for either.
    let mut stalled = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    stalled
        .write_all(
            b"POST /render HTTP/1.1\r\nHost: rollupd\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100000\r\n\r\ntarget=a",
        )
        .unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(10)),
        "a request body that stopped coming was waited for"
    );
    // A keep-alive connection idle after its reply is closed too.
    let mut kept = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: rollupd\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut kept, Duration::from_secs(10)),
        "an idle keep-alive connection was kept"
    );
    assert_eq!(health(d.http).as_deref(), Some("HTTP/1.1 200 OK"));
    d.stop();
}

#[test]
fn http_connections_past_the_cap_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .server("max_http_connections = 2"),
    );
    let mut admin = d.admin();
    // Two connections that hold their slots (a request head not finished).
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    let mut third = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    assert!(
        closed_within(&mut third, SECS_5),
        "a connection past the cap was served"
    );
    wait_until(SECS_5, "the refusal to be counted", || {
        (admin.totals()["http_connections_refused"] >= 1).then_some(())
    });
    drop(held);
    let status = wait_until(SECS_5, "a freed HTTP slot to serve", || health(d.http));
    assert_eq!(status, "HTTP/1.1 200 OK");
    drop(admin);
    d.stop();
}
