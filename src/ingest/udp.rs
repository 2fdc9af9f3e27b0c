//! statsd over UDP: several threads read one socket in batches and hand each
//! datagram to the aggregator. Nothing here parses or waits on disk.
//!
//! `recvmmsg` and the `SO_RXQ_OVFL` ancillary counter are called through
//! `libc` directly: the batch buffers are allocated once per thread and
//! reused for every call, and the kernel's per-socket drop counter arrives
//! with each datagram, which the std and socket2 APIs do not expose.
#![allow(unsafe_code)] // recvmmsg(2), setsockopt(2) and the SO_RXQ_OVFL control messages, through libc

use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::aggregate::{Aggregator, Scratch};
use crate::telemetry::LocalCounts;

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 64;
/// Extra bytes between two datagram buffers of a batch. Buffers of
/// `max_packet` (64 KiB by default) bytes laid end to end all start on the
/// same cache sets, so the 64 datagrams of a batch evict each other from L1
/// and L2 between the kernel's copy and the parse. 24 cache lines (more
/// than a 1432-byte datagram spans) move each buffer onto its own sets.
const SLOT_PAD: usize = 24 * 64;
/// A batch of fewer datagrams than this means the socket held little; the
/// reader then pauses for `COALESCE` before reading again, so that the next
/// batch is fuller. Woken for every datagram, two readers would otherwise
/// read a few datagrams per system call and pay a wakeup, a `recvmmsg` and
/// a round of shard locks each time. The pause costs at most that much
/// latency on the way into an interval that lasts seconds; at high rates
/// batches are full and there is no pause at all.
const SMALL_BATCH: usize = BATCH / 4;
const COALESCE: Duration = Duration::from_micros(200);
/// How often a blocked reader looks at the shutdown flag.
pub(super) const POLL: Duration = Duration::from_millis(200);

/// Binds `count` statsd UDP sockets on one address, one per receiver thread,
/// each with a large receive buffer and the kernel drop counter switched on.
///
/// They share the port with SO_REUSEPORT, and the kernel steers each sender
/// (by its address and port) to one of them: the datagrams of one client are
/// read by one thread, in the order they came, as Etsy's single reader sees
/// them. (Threads reading one shared socket would reorder them: a gauge set
/// and the delta sent after it could be applied the other way round.)
pub fn bind(addr: SocketAddr, recv_buffer: usize, count: usize) -> io::Result<Vec<UdpSocket>> {
    if addr.port() != 0 {
        // With SO_REUSEPORT a second daemon would silently share the port;
        // a plain bind first keeps "address in use" an error.
        drop(UdpSocket::bind(addr)?);
    }
    let first = bind_one(addr, recv_buffer)?;
    // Port 0 is resolved by the first bind; the others join it.
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count.max(1) {
        sockets.push(bind_one(addr, recv_buffer)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false).ok();
    }
    // As root, SO_RCVBUFFORCE passes net.core.rmem_max; otherwise the kernel
    // caps SO_RCVBUF at rmem_max silently.
    // A size past c_int asks for the most the kernel gives.
    let forced = libc::c_int::try_from(recv_buffer).unwrap_or(libc::c_int::MAX);
    if set_int(&s, libc::SO_RCVBUFFORCE, forced).is_err() {
        s.set_recv_buffer_size(recv_buffer)?;
    }
    set_int(&s, libc::SO_RXQ_OVFL, 1)?;
    s.bind(&addr.into())?;
    s.set_read_timeout(Some(POLL))?;
    Ok(s.into())
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "size_of::<c_int>() is 4, which fits a socklen_t"
)]
fn set_int(s: &Socket, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts one reader per socket.
pub fn start(
    sockets: Vec<UdpSocket>,
    max_packet: usize,
    agg: Arc<Aggregator>,
    shutdown: Arc<AtomicBool>,
) -> io::Result<Vec<JoinHandle<()>>> {
    sockets
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let (agg, shutdown) = (agg.clone(), shutdown.clone());
            std::thread::Builder::new()
                .name(format!("udp-recv-{i}"))
                .spawn(move || receive_loop(&socket, max_packet, &agg, &shutdown))
        })
        .collect()
}

/// Buffers for one batch: datagrams, their iovecs and headers, and room for
/// one `SO_RXQ_OVFL` control message each.
pub(crate) struct Batch {
    data: Vec<u8>,
    iov: Vec<libc::iovec>,
    ctrl: Vec<u8>,
    hdrs: Vec<libc::mmsghdr>,
    /// Longest datagram read whole.
    size: usize,
    /// Distance between two datagram buffers in `data`.
    stride: usize,
    ctrl_len: usize,
}

impl Batch {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "size_of::<u32>() is 4, which fits the u32 CMSG_SPACE takes"
    )]
    fn new(size: usize) -> Box<Batch> {
        // SAFETY: CMSG_SPACE is a pure size computation.
        let ctrl_len = unsafe { libc::CMSG_SPACE(mem::size_of::<u32>() as u32) } as usize;
        let stride = size.next_multiple_of(64) + SLOT_PAD;
        let mut b = Box::new(Batch {
            data: vec![0; stride * BATCH],
            iov: Vec::with_capacity(BATCH),
            ctrl: vec![0; ctrl_len * BATCH],
            // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
            hdrs: vec![unsafe { mem::zeroed() }; BATCH],
            size,
            stride,
            ctrl_len,
        });
        for i in 0..BATCH {
            let base = b.data[i * stride..].as_mut_ptr();
            b.iov.push(libc::iovec {
                iov_base: base as *mut libc::c_void,
                iov_len: size,
            });
        }
        b.reset();
        b
    }

    /// Points each header at its buffers; the kernel overwrites lengths and
    /// flags, so this runs before every call.
    fn reset(&mut self) {
        for i in 0..BATCH {
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = std::ptr::null_mut();
            h.msg_namelen = 0;
            h.msg_iov = &mut self.iov[i];
            h.msg_iovlen = 1;
            h.msg_control = self.ctrl[i * self.ctrl_len..].as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = self.ctrl_len as _;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "BATCH is 64, which fits the u32 recvmmsg takes"
    )]
    fn recv(&mut self, fd: libc::c_int, flags: libc::c_int) -> io::Result<usize> {
        self.reset();
        // SAFETY: every header points at buffers owned by self that outlive
        // the call, with their true lengths.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as u32,
                flags,
                std::ptr::null_mut(),
            )
        };
        // Negative is the error return (-1, with errno set).
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Datagram `i`: its bytes, whether it was truncated, and the socket's
    /// cumulative drop counter if the kernel attached it.
    pub(crate) fn datagram(&self, i: usize) -> (&[u8], bool, Option<u32>) {
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(self.size);
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let mut drops = None;
        // SAFETY: the kernel filled msg_control up to msg_controllen; the
        // CMSG macros walk only within it.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                    drops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32));
                }
                c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
            }
        }
        (
            &self.data[i * self.stride..i * self.stride + len],
            truncated,
            drops,
        )
    }
}

/// Reads `socket` in batches until shutdown, then what it still holds
/// without waiting, and returns. `on_batch` gets each batch with the number
/// of datagrams in it. The socket must be blocking with a read timeout
/// (the shutdown poll).
///
/// The carbon receiver reads its socket through this too.
pub(super) fn read_batches(
    socket: &UdpSocket,
    max_packet: usize,
    shutdown: &AtomicBool,
    on_batch: impl FnMut(&Batch, usize),
) {
    read_batches_polled(socket, max_packet, shutdown, false, on_batch);
}

/// [`read_batches`], and with `idle_calls` `on_batch` is also called with
/// no datagram each time a wait for one times out (about every
/// [`POLL`]), so a reader with work of its own to do on a clock (the
/// relay's counts) does it when no traffic comes.
pub(crate) fn read_batches_polled(
    socket: &UdpSocket,
    max_packet: usize,
    shutdown: &AtomicBool,
    idle_calls: bool,
    mut on_batch: impl FnMut(&Batch, usize),
) {
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new(max_packet);
    let mut drain_started = None;
    loop {
        // Once shutdown is asked for, read whatever the kernel still holds
        // without waiting (for at most DRAIN_LIMIT), then stop.
        let draining = shutdown.load(Relaxed);
        if draining && super::drain_over(&mut drain_started) {
            break;
        }
        let flags = if draining {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        let n = match batch.recv(fd, flags) {
            Ok(n) => n,
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if draining => break,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    if idle_calls {
                        on_batch(&batch, 0);
                    }
                    continue;
                }
                io::ErrorKind::Interrupted => continue,
                _ => {
                    tracing::error!(error = %e, "UDP receive failed");
                    std::thread::sleep(POLL);
                    continue;
                }
            },
        };
        on_batch(&batch, n);
        if n == 0 && draining {
            break;
        }
        if n < SMALL_BATCH && !draining {
            std::thread::sleep(COALESCE);
        }
    }
}

fn receive_loop(socket: &UdpSocket, max_packet: usize, agg: &Aggregator, shutdown: &AtomicBool) {
    let mut scratch = Scratch::default();
    let mut counts = LocalCounts::default();
    let telemetry = agg.telemetry().clone();
    // The socket's cumulative drop count as last reported.
    let mut reported: u32 = 0;
    read_batches(socket, max_packet, shutdown, |batch, n| {
        let mut max_drops = None;
        // The whole batch at once, so the aggregator takes each shard lock
        // once per batch instead of once per line.
        let datagrams = (0..n).map(|i| {
            let (data, truncated, drops) = batch.datagram(i);
            if drops.is_some() {
                max_drops = drops.max(max_drops);
            }
            (data, truncated)
        });
        agg.ingest_batch(datagrams, &mut scratch, &mut counts);
        telemetry.publish(&mut counts);
        if let Some(d) = max_drops.filter(|d| *d > reported) {
            // The counter is cumulative for this thread's own socket: add
            // what is new since the last report.
            telemetry
                .udp_kernel_drops
                .fetch_add(u64::from(d - reported), Relaxed);
            reported = d;
        }
    });
    telemetry.publish(&mut counts);
}
