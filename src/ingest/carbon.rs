//! The carbon plaintext protocol over TCP and UDP, for the store.
//!
//! The sockets are read as statsd's are (the TCP accept loop, framing and
//! over-long-line rule of [`super::tcp`]; the `recvmmsg` batches of
//! [`super::udp`]), but each line is parsed here by
//! [`crate::protocol::carbon`] and the points handed to a [`PointSink`]:
//! all the points of one read (TCP) or one batch of datagrams (UDP), up to
//! [`MAX_BATCH`], in one call, so the sink can write them as one store
//! batch.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ingest::tcp::{read_lines, serve_connections, LineConsumer, TcpLimits};
use crate::ingest::udp::{read_batches, POLL};
use crate::protocol::carbon::{for_each_line, normalize_tags, CarbonBad, Point, NOW};

/// The most points handed to [`PointSink::write_points`] in one call.
pub const MAX_BATCH: usize = 4096;

/// What an over-long TCP line is logged as: its bytes are not kept.
const TOO_LONG_LINE: &[u8] = b"(line longer than max_line_length)";

/// One point, owning its name.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedPoint {
    /// In carbon's canonical form ([`normalize_tags`]).
    pub name: String,
    /// Never NaN; may be infinite.
    pub value: f64,
    /// Unix seconds; a point sent with `-1` has the time it was read.
    pub timestamp: i64,
}

/// Where the carbon receivers put what they read. Called from the receiver
/// threads, several at once.
pub trait PointSink: Send + Sync + 'static {
    /// The good points of one read or batch of datagrams, in the order they
    /// came (at most [`MAX_BATCH`]; never none).
    fn write_points(&self, points: &[OwnedPoint]);
    /// One refused line, as received (without its newline), for counting as
    /// `carbon.bad_lines.<reason>` and logging.
    fn bad_line(&self, reason: CarbonBad, line: &[u8]);
    /// A TCP connection was closed unread: `max_connections` were open.
    fn connection_refused(&self, max_connections: usize);
}

/// Serves carbon plaintext TCP connections until `shutdown`, one thread per
/// connection and at most `max_connections` at once. A line longer than
/// `max_line` is a `too_long` bad line and skipped up to its newline; the
/// connection goes on. A connection silent for `idle_timeout` is closed. Once shutdown is asked for, what connections (and
/// the accept queue) already hold is read, then the thread ends.
pub fn start_tcp(
    listener: TcpListener,
    limits: TcpLimits,
    sink: Arc<dyn PointSink>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let TcpLimits {
        max_line,
        max_connections: max_conns,
        idle_timeout,
    } = limits;
    serve_connections(
        "carbon-tcp",
        listener,
        max_conns,
        shutdown,
        {
            let sink = sink.clone();
            move || sink.connection_refused(max_conns)
        },
        move |stream, shutdown| {
            let mut batch = Batcher::new(&*sink);
            read_lines(stream, max_line, idle_timeout, shutdown, &mut batch);
        },
    )
}

/// Reads carbon plaintext datagrams (one or more lines each) from `socket`
/// until `shutdown`, then what the socket still holds. A datagram longer
/// than `max_packet` is cut by the kernel: its lines up to the last
/// newline count, and the cut one is a `too_long` bad line.
pub fn start_udp(
    socket: UdpSocket,
    max_packet: usize,
    sink: Arc<dyn PointSink>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    // The reader blocks with a timeout, to look at the shutdown flag.
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(POLL))?;
    std::thread::Builder::new()
        .name("carbon-udp".into())
        .spawn(move || {
            let mut batch = Batcher::new(&*sink);
            read_batches(&socket, max_packet, &shutdown, |datagrams, n| {
                for i in 0..n {
                    let (data, truncated, _) = datagrams.datagram(i);
                    batch.datagram(data, truncated);
                }
                batch.flush();
            });
            batch.flush();
        })
}

/// Collects the points of one read for the sink.
struct Batcher<'a> {
    sink: &'a dyn PointSink,
    points: Vec<OwnedPoint>,
    /// The time given to points sent with [`NOW`], read once per batch.
    now: Option<i64>,
}

impl<'a> Batcher<'a> {
    fn new(sink: &'a dyn PointSink) -> Self {
        Batcher {
            sink,
            points: Vec::new(),
            now: None,
        }
    }

    fn parse_lines(&mut self, buf: &[u8]) {
        for_each_line(buf, |parsed, line| match parsed {
            Ok(point) => self.push(point),
            Err(reason) => self.sink.bad_line(reason, line),
        });
    }

    /// A datagram: if the kernel cut it, its last line is incomplete.
    fn datagram(&mut self, data: &[u8], truncated: bool) {
        if !truncated {
            self.parse_lines(data);
            return;
        }
        let cut = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.parse_lines(&data[..cut]);
        self.sink.bad_line(CarbonBad::TooLong, &data[cut..]);
    }

    fn push(&mut self, point: Point<'_>) {
        let timestamp = if point.timestamp == NOW {
            *self.now.get_or_insert_with(unix_now)
        } else {
            point.timestamp
        };
        self.points.push(OwnedPoint {
            name: normalize_tags(point.name).into_owned(),
            value: point.value,
            timestamp,
        });
        if self.points.len() >= MAX_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.points.is_empty() {
            self.sink.write_points(&self.points);
            self.points.clear();
        }
        self.now = None;
    }
}

impl LineConsumer for Batcher<'_> {
    fn lines(&mut self, lines: &[u8]) {
        self.parse_lines(lines);
    }

    fn overlong(&mut self, count: u64) {
        for _ in 0..count {
            self.sink.bad_line(CarbonBad::TooLong, TOO_LONG_LINE);
        }
    }

    fn read_done(&mut self) {
        self.flush();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// Long enough for a loaded machine; the tests wait only until what
    /// they expect has arrived.
    const PATIENCE: Duration = Duration::from_secs(10);

    #[derive(Default)]
    struct TestSink {
        points: Mutex<Vec<OwnedPoint>>,
        /// The size of each `write_points` call.
        batches: Mutex<Vec<usize>>,
        bad: Mutex<Vec<(CarbonBad, Vec<u8>)>>,
        refused: std::sync::atomic::AtomicUsize,
    }

    impl PointSink for TestSink {
        fn write_points(&self, points: &[OwnedPoint]) {
            assert!(!points.is_empty() && points.len() <= MAX_BATCH);
            self.points.lock().unwrap().extend_from_slice(points);
            self.batches.lock().unwrap().push(points.len());
        }

        fn bad_line(&self, reason: CarbonBad, line: &[u8]) {
            self.bad.lock().unwrap().push((reason, line.to_vec()));
        }

        fn connection_refused(&self, _max_connections: usize) {
            self.refused.fetch_add(1, Relaxed);
        }
    }

    impl TestSink {
        fn points(&self) -> Vec<OwnedPoint> {
            self.points.lock().unwrap().clone()
        }

        fn count(&self) -> usize {
            self.points.lock().unwrap().len()
        }

        fn bad_count(&self, reason: CarbonBad) -> usize {
            let bad = self.bad.lock().unwrap();
            bad.iter().filter(|(r, _)| *r == reason).count()
        }

        fn bad_total(&self) -> usize {
            self.bad.lock().unwrap().len()
        }

        /// Waits until `done` holds, at most [`PATIENCE`].
        fn wait(&self, what: &str, done: impl Fn(&TestSink) -> bool) {
            let deadline = Instant::now() + PATIENCE;
            while !done(self) {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: {} points, bad {:?}",
                    self.count(),
                    self.bad.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn p(name: &str, value: f64, timestamp: i64) -> OwnedPoint {
        OwnedPoint {
            name: name.into(),
            value,
            timestamp,
        }
    }

    struct Server {
        addr: SocketAddr,
        sink: Arc<TestSink>,
        shutdown: Arc<AtomicBool>,
        handle: Option<JoinHandle<()>>,
    }

    impl Server {
        fn tcp(max_line: usize, max_conns: usize) -> Server {
            Server::tcp_with(TcpLimits {
                max_line,
                max_connections: max_conns,
                idle_timeout: None,
            })
        }

        fn tcp_with(limits: TcpLimits) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let sink = Arc::new(TestSink::default());
            let shutdown = Arc::new(AtomicBool::new(false));
            let handle = start_tcp(listener, limits, sink.clone(), shutdown.clone()).unwrap();
            Server {
                addr,
                sink,
                shutdown,
                handle: Some(handle),
            }
        }

        fn udp(max_packet: usize) -> Server {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = socket.local_addr().unwrap();
            let sink = Arc::new(TestSink::default());
            let shutdown = Arc::new(AtomicBool::new(false));
            let handle = start_udp(socket, max_packet, sink.clone(), shutdown.clone()).unwrap();
            Server {
                addr,
                sink,
                shutdown,
                handle: Some(handle),
            }
        }

        fn connect(&self) -> TcpStream {
            TcpStream::connect(self.addr).unwrap()
        }

        fn sender(&self) -> UdpSocket {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(self.addr).unwrap();
            s
        }

        /// Asks for shutdown and waits for the receiver to end.
        fn stop(&mut self) {
            self.shutdown.store(true, Relaxed);
            let handle = self.handle.take().unwrap();
            let deadline = Instant::now() + PATIENCE;
            while !handle.is_finished() {
                assert!(Instant::now() < deadline, "receiver did not stop");
                std::thread::sleep(Duration::from_millis(5));
            }
            handle.join().unwrap();
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.shutdown.store(true, Relaxed);
        }
    }

    #[test]
    fn tcp_lines_split_across_writes_are_joined() {
        let mut server = Server::tcp(1024, 8);
        let mut conn = server.connect();
        conn.set_nodelay(true).unwrap();
        for part in [
            &b"a.b 1 17"[..],
            b"00000000\nc",
            b" 2 1700000001\r\nd 3",
            b" 1700000002\n\ne",
            b" 4",
        ] {
            conn.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        server.sink.wait("the complete lines", |s| s.count() == 3);
        // The last line has no newline: it counts once the stream ends.
        conn.write_all(b" 1700000003").unwrap();
        drop(conn);
        server.sink.wait("the last line", |s| s.count() == 4);
        server.stop();
        assert_eq!(
            server.sink.points(),
            vec![
                p("a.b", 1.0, 1_700_000_000),
                p("c", 2.0, 1_700_000_001),
                p("d", 3.0, 1_700_000_002),
                p("e", 4.0, 1_700_000_003),
            ]
        );
        assert_eq!(server.sink.bad_total(), 0);
    }

    /// Past `max_conns` a connection is closed unread and counted; the
    /// open ones go on, and a slot freed is used again.
    #[test]
    fn tcp_connections_past_the_cap_are_refused_and_counted() {
        let mut server = Server::tcp(1024, 2);
        let mut open: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
        for (i, conn) in open.iter_mut().enumerate() {
            writeln!(conn, "held.{i} 1 1700000000").unwrap();
        }
        server
            .sink
            .wait("both held connections", |s| s.count() == 2);
        let mut extra = server.connect();
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = writeln!(extra, "refused.m 1 1700000000");
        let mut byte = [0u8; 1];
        let closed = matches!(extra.read(&mut byte), Ok(0) | Err(_));
        assert!(closed, "the connection past the cap was not closed");
        server.sink.wait("the refusal to be counted", |s| {
            s.refused.load(Relaxed) == 1
        });
        // The held connections still work, and a freed slot is reused.
        writeln!(open[0], "held.0 2 1700000001").unwrap();
        server
            .sink
            .wait("a held connection's line", |s| s.count() == 3);
        drop(open.pop());
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut again = server.connect();
            writeln!(again, "again.m 1 1700000000").unwrap();
            drop(again);
            let got = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                server.sink.points().iter().any(|p| p.name == "again.m")
            });
            if got {
                break;
            }
            assert!(Instant::now() < deadline, "a freed slot was never reused");
        }
        server.stop();
        assert!(!server.sink.points().iter().any(|p| p.name == "refused.m"));
    }

    /// A connection that sends nothing for the idle timeout is closed (its
    /// lines kept, its slot freed); one that keeps sending stays open.
    #[test]
    fn tcp_idle_connections_are_closed() {
        let mut server = Server::tcp_with(TcpLimits {
            max_line: 1024,
            max_connections: 1,
            idle_timeout: Some(Duration::from_secs(1)),
        });
        let mut idle = server.connect();
        idle.write_all(b"idle.a 1 1700000000\nidle.b 2 1700000001")
            .unwrap();
        idle.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut byte = [0u8; 1];
        assert!(
            matches!(idle.read(&mut byte), Ok(0) | Err(_)),
            "the idle connection was not closed"
        );
        server.sink.wait("both lines", |s| s.count() == 2);
        // The only slot is free again, and a busy connection outlives the
        // timeout.
        let mut busy = server.connect();
        for i in 0..15 {
            writeln!(busy, "busy.m {i} 1700000000").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        server
            .sink
            .wait("the busy connection's lines", |s| s.count() == 17);
        assert_eq!(server.sink.refused.load(Relaxed), 0);
        drop(busy);
        server.stop();
    }

    #[test]
    fn tcp_serves_several_connections_at_once() {
        const CONNS: usize = 4;
        const LINES: usize = 200;
        let mut server = Server::tcp(1024, 16);
        let conns: Vec<TcpStream> = (0..CONNS).map(|_| server.connect()).collect();
        // Interleaved writes, so every connection is open at once.
        for i in 0..LINES {
            for (c, mut conn) in conns.iter().enumerate() {
                writeln!(conn, "conn{c}.m {i} {}", 1_700_000_000 + i).unwrap();
            }
        }
        drop(conns);
        server
            .sink
            .wait("every line", |s| s.count() == CONNS * LINES);
        server.stop();
        let points = server.sink.points();
        // Each connection's points arrive in the order they were written.
        for c in 0..CONNS {
            let name = format!("conn{c}.m");
            let values: Vec<f64> = points
                .iter()
                .filter(|p| p.name == name)
                .map(|p| p.value)
                .collect();
            let want: Vec<f64> = (0..LINES).map(|i| i as f64).collect();
            assert_eq!(values, want, "{name}");
        }
    }

    #[test]
    fn tcp_bad_lines_are_counted_and_good_ones_around_them_kept() {
        let mut server = Server::tcp(1024, 8);
        let mut conn = server.connect();
        conn.write_all(
            b"good.1 1 100\n\
              only two\n\
              bad\xff.utf8 1 100\n\
              good.2 2 200\n\
              nan.value nan 100\n\
              bad.ts 1 -5\n\
              bad.tags;k 1 100\n\
              good.3;b=2;a=1 3 300\n\
              ;a=1 1 100\n\
              ctl\x01name 1 100\n\
              good.4 -inf 400\r\n",
        )
        .unwrap();
        drop(conn);
        server
            .sink
            .wait("every line", |s| s.count() + s.bad_total() == 11);
        server.stop();
        assert_eq!(
            server.sink.points(),
            vec![
                p("good.1", 1.0, 100),
                p("good.2", 2.0, 200),
                p("good.3;a=1;b=2", 3.0, 300),
                p("good.4", f64::NEG_INFINITY, 400),
            ]
        );
        let s = &server.sink;
        assert_eq!(s.bad_count(CarbonBad::WrongFieldCount), 1);
        assert_eq!(s.bad_count(CarbonBad::NotUtf8), 1);
        assert_eq!(s.bad_count(CarbonBad::BadValue), 1);
        assert_eq!(s.bad_count(CarbonBad::BadTimestamp), 1);
        assert_eq!(s.bad_count(CarbonBad::BadTags), 1);
        assert_eq!(s.bad_count(CarbonBad::EmptyName), 1);
        assert_eq!(s.bad_count(CarbonBad::BadName), 1);
        // The raw line comes with its reason.
        assert!(s
            .bad
            .lock()
            .unwrap()
            .contains(&(CarbonBad::BadTimestamp, b"bad.ts 1 -5".to_vec())));
    }

    #[test]
    fn tcp_overlong_lines_are_bad_and_the_connection_goes_on() {
        let mut server = Server::tcp(64, 8);
        let mut conn = server.connect();
        conn.write_all(b"before 1 1\n").unwrap();
        // One over-long line in a single write, one spread over several.
        let long = format!("{} 1 1\n", "x".repeat(200));
        conn.write_all(long.as_bytes()).unwrap();
        conn.write_all(b"middle 2 2\n").unwrap();
        for _ in 0..4 {
            conn.write_all(&[b'y'; 50]).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        conn.write_all(b" 1 1\nafter 3 3\n").unwrap();
        server.sink.wait("three points and two bad lines", |s| {
            s.count() == 3 && s.bad_count(CarbonBad::TooLong) == 2
        });
        // The connection is still served.
        conn.write_all(b"later 4 4\n").unwrap();
        server.sink.wait("the later point", |s| s.count() == 4);
        drop(conn);
        server.stop();
        let names: Vec<String> = server.sink.points().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["before", "middle", "after", "later"]);
        assert_eq!(server.sink.bad_total(), 2);
    }

    #[test]
    fn tcp_refuses_connections_past_the_limit() {
        let mut server = Server::tcp(1024, 1);
        let mut first = server.connect();
        first.write_all(b"first 1 1\n").unwrap();
        server.sink.wait("the first point", |s| s.count() == 1);
        let mut second = server.connect();
        let _ = second.write_all(b"second 2 2\n");
        // The server closes the second connection unread.
        second.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 16];
        match second.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("second connection not closed: {other:?}"),
        }
        first.write_all(b"first 3 3\n").unwrap();
        server
            .sink
            .wait("the first connection's second point", |s| s.count() == 2);
        drop(first);
        server.stop();
        assert!(server.sink.points().iter().all(|p| p.name == "first"));
    }

    #[test]
    fn tcp_points_of_one_read_come_in_batches_of_at_most_max_batch() {
        const LINES: usize = MAX_BATCH + 904;
        let mut server = Server::tcp(1024, 8);
        let mut text = String::new();
        for i in 0..LINES {
            text.push_str(&format!("m{i} 1 1\n"));
        }
        let mut conn = server.connect();
        conn.write_all(text.as_bytes()).unwrap();
        drop(conn);
        server.sink.wait("every line", |s| s.count() == LINES);
        server.stop();
        let batches = server.sink.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), LINES);
        assert!(batches.iter().all(|&b| b <= MAX_BATCH));
        // Fewer calls than reads of one line each: lines are batched.
        assert!(batches.len() < LINES / 8, "{} batches", batches.len());
    }

    #[test]
    fn timestamp_minus_one_is_the_time_of_arrival() {
        let mut server = Server::tcp(1024, 8);
        let before = unix_now();
        let mut conn = server.connect();
        conn.write_all(b"now.a 1 -1\nnow.b 2 -1.5\nthen 3 5\n")
            .unwrap();
        drop(conn);
        server.sink.wait("three points", |s| s.count() == 3);
        let after = unix_now();
        server.stop();
        let points = server.sink.points();
        for point in &points[..2] {
            assert!(
                (before..=after).contains(&point.timestamp),
                "{point:?} not in {before}..={after}"
            );
        }
        assert_eq!(points[2].timestamp, 5);
    }

    #[test]
    fn tcp_shutdown_reads_what_connections_hold() {
        let mut server = Server::tcp(1024, 8);
        // Written before shutdown and left open: some of these connections
        // may not even be accepted yet.
        let conns: Vec<TcpStream> = (0..3)
            .map(|c| {
                let mut conn = server.connect();
                for i in 0..50 {
                    writeln!(conn, "drain{c} {i} 1").unwrap();
                }
                conn
            })
            .collect();
        server.stop();
        assert_eq!(server.sink.count(), 150);
        assert_eq!(server.sink.bad_total(), 0);
        drop(conns);
    }

    #[test]
    fn udp_datagrams_with_several_lines() {
        let mut server = Server::udp(65_536);
        let sender = server.sender();
        sender
            .send(b"a 1 10\nb;z=1;y=2 2 20\r\nbroken\n\nc 3 30")
            .unwrap();
        sender.send(b"d 4 40\n").unwrap();
        server.sink.wait("four points and a bad line", |s| {
            s.count() == 4 && s.bad_total() == 1
        });
        server.stop();
        assert_eq!(
            server.sink.points(),
            vec![
                p("a", 1.0, 10),
                p("b;y=2;z=1", 2.0, 20),
                p("c", 3.0, 30),
                p("d", 4.0, 40),
            ]
        );
        assert_eq!(
            server.sink.bad.lock().unwrap()[0],
            (CarbonBad::WrongFieldCount, b"broken".to_vec())
        );
        // A datagram's points reach the sink together.
        let batches = server.sink.batches.lock().unwrap().clone();
        assert!(batches[0] >= 3, "{batches:?}");
    }

    #[test]
    fn udp_cut_datagram_keeps_its_complete_lines() {
        let mut server = Server::udp(32);
        let sender = server.sender();
        // 9 + 9 bytes of whole lines, then a line the 32-byte buffer cuts.
        sender
            .send(b"a 1 1000\nb 2 2000\nlonger.name 3 3000\n")
            .unwrap();
        sender
            .send(b"no.newline.in.the.first.32.bytes 1 1\n")
            .unwrap();
        server.sink.wait("two points and two cut lines", |s| {
            s.count() == 2 && s.bad_count(CarbonBad::TooLong) == 2
        });
        server.stop();
        assert_eq!(
            server.sink.points(),
            vec![p("a", 1.0, 1000), p("b", 2.0, 2000)]
        );
        let bad = server.sink.bad.lock().unwrap().clone();
        assert_eq!(bad[0], (CarbonBad::TooLong, b"longer.name 3 ".to_vec()));
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn udp_shutdown_reads_what_the_socket_holds() {
        let mut server = Server::udp(65_536);
        let sender = server.sender();
        // Few enough to fit the default receive buffer if the reader is
        // not scheduled at all before shutdown.
        for i in 0..64 {
            let datagram = format!("q{i}.a {i} 1\nq{i}.b {i} 1\nq{i}.c {i} 1\n");
            sender.send(datagram.as_bytes()).unwrap();
        }
        server.stop();
        assert_eq!(server.sink.count(), 64 * 3);
        let names: Vec<String> = server.sink.points().into_iter().map(|p| p.name).collect();
        let want: Vec<String> = (0..64)
            .flat_map(|i| ["a", "b", "c"].map(|x| format!("q{i}.{x}")))
            .collect();
        assert_eq!(names, want);
    }
}
