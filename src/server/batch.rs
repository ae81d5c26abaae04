//! Batched UDP I/O with `recvmmsg` and `sendmmsg`: one system call receives up to [`BATCH`]
//! queries and one sends their answers, instead of two calls per query. On a busy server the
//! kernel's per-call cost dominates the CPU time of answering (gdnsd and Knot batch the same
//! way), so this is where the fast path's saving would otherwise go.
//!
//! The `unsafe` here (apidns has one other place, the `getsockopt(TCP_INFO)` call in
//! `health/keepalive.rs`) fills the `mmsghdr` arrays that the two calls read and write, pointing
//! into buffers that it owns and that outlive each call, and reads back the addresses the kernel
//! wrote. Each block says why it is sound.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Room for the largest UDP datagram, so that no query is cut short (real ones are well under
/// 512 bytes). The slots are allocated untouched: only the bytes a datagram fills become
/// resident memory.
pub const SLOT: usize = 65_535;

/// Receive buffers for one batch.
pub struct Received {
    data: Vec<u8>,
    lengths: [usize; BATCH],
    truncated: [bool; BATCH],
    peers: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl Default for Received {
    fn default() -> Self {
        Self::new()
    }
}

impl Received {
    pub fn new() -> Self {
        Self {
            data: vec![0; BATCH * SLOT],
            lengths: [0; BATCH],
            truncated: [false; BATCH],
            peers: [None; BATCH],
            count: 0,
        }
    }

    /// The datagrams of the last receive: (bytes, sender). Truncated ones and those from an
    /// address that cannot be answered are left out.
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        (0..self.count).filter_map(move |i| {
            let peer = self.peers[i]?;
            if self.truncated[i] || peer.port() == 0 {
                return None;
            }
            let start = i * SLOT;
            self.data
                .get(start..start + self.lengths[i])
                .map(|bytes| (bytes, peer))
        })
    }
}

/// Receives up to [`BATCH`] datagrams, blocking until at least one arrives or the socket's
/// receive timeout passes (then `WouldBlock`/`TimedOut`).
pub fn receive(socket: &impl AsRawFd, into: &mut Received) -> io::Result<usize> {
    let fd: RawFd = socket.as_raw_fd();
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut names: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
        [const { MaybeUninit::uninit() }; BATCH];
    let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let base = into.data.as_mut_ptr();
    for i in 0..BATCH {
        // SAFETY: slot i lies inside `into.data` (BATCH * SLOT bytes), which outlives the call.
        let slot = unsafe { base.add(i * SLOT) };
        iovecs[i].write(libc::iovec {
            iov_base: slot.cast(),
            iov_len: SLOT,
        });
        // SAFETY: an all-zero msghdr is a valid empty header; the fields set below complete it.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = names[i].as_mut_ptr().cast();
        header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        header.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
        header.msg_hdr.msg_iovlen = 1;
        headers[i].write(header);
    }
    // SAFETY: `headers` holds BATCH initialised mmsghdr whose pointers (names, iovecs, buffers)
    // stay valid for the duration of the call; the kernel writes at most BATCH entries.
    let received = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr().cast(),
            BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if received < 0 {
        into.count = 0;
        return Err(io::Error::last_os_error());
    }
    let received = received as usize;
    for i in 0..received.min(BATCH) {
        // SAFETY: the kernel filled the first `received` headers, and every header was
        // initialised above.
        let header = unsafe { headers[i].assume_init_ref() };
        into.lengths[i] = (header.msg_len as usize).min(SLOT);
        into.truncated[i] = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        // The kernel sets `msg_namelen` to the address's full length, which could exceed the
        // buffer (it cannot here: sockaddr_storage holds any address); it wrote at most this much.
        let written = header
            .msg_hdr
            .msg_namelen
            .min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: names[i] is a sockaddr_storage of which the kernel initialised the first
        // `written` bytes.
        into.peers[i] = unsafe { socket_address(names[i].as_ptr(), written) };
    }
    into.count = received.min(BATCH);
    Ok(into.count)
}

/// Answers waiting to be sent, in buffers kept from one batch to the next: once each buffer
/// has grown to the size of a typical answer, filling a batch allocates nothing.
pub struct Replies {
    buffers: Vec<Vec<u8>>,
    peers: [Option<SocketAddr>; BATCH],
    count: usize,
}

impl Default for Replies {
    fn default() -> Self {
        Self::new()
    }
}

impl Replies {
    /// Room for a classic (512-byte) answer in each slot; larger ones grow their slot.
    const TYPICAL_ANSWER: usize = 512;

    pub fn new() -> Self {
        Self {
            buffers: (0..BATCH)
                .map(|_| Vec::with_capacity(Self::TYPICAL_ANSWER))
                .collect(),
            peers: [None; BATCH],
            count: 0,
        }
    }

    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// The buffer for the next answer, or `None` when the batch is full. What is written there
    /// is sent only after [`Replies::commit`].
    pub fn next_buffer(&mut self) -> Option<&mut Vec<u8>> {
        self.buffers.get_mut(self.count)
    }

    /// Queues the bytes in the buffer last handed out, for `peer`.
    pub fn commit(&mut self, peer: SocketAddr) {
        if let Some(slot) = self.peers.get_mut(self.count) {
            *slot = Some(peer);
            self.count += 1;
        }
    }

    fn queued(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.buffers
            .iter()
            .zip(&self.peers)
            .take(self.count)
            .filter_map(|(bytes, peer)| Some((bytes.as_slice(), (*peer)?)))
    }
}

/// Sends the queued answers with as few `sendmmsg` calls as it takes. Errors for one datagram
/// (e.g. an unreachable destination) skip that datagram only.
pub fn send(socket: &impl AsRawFd, replies: &Replies) {
    let fd: RawFd = socket.as_raw_fd();
    let mut names: [MaybeUninit<libc::sockaddr_storage>; BATCH] =
        [const { MaybeUninit::uninit() }; BATCH];
    let mut iovecs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut headers: [MaybeUninit<libc::mmsghdr>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    let mut peers: [Option<SocketAddr>; BATCH] = [None; BATCH];
    let mut count = 0;
    for (i, (bytes, peer)) in replies.queued().enumerate().take(BATCH) {
        let name_len = write_socket_address(&mut names[i], peer);
        iovecs[i].write(libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        });
        // SAFETY: an all-zero msghdr is a valid empty header; the fields set below complete it.
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = names[i].as_mut_ptr().cast();
        header.msg_hdr.msg_namelen = name_len;
        header.msg_hdr.msg_iov = iovecs[i].as_mut_ptr();
        header.msg_hdr.msg_iovlen = 1;
        headers[i].write(header);
        peers[i] = Some(peer);
        count = i + 1;
    }
    let mut sent = 0;
    while sent < count {
        // SAFETY: headers[sent..count] are initialised and point at `names`, `iovecs` and the
        // buffers of `replies`, all alive for the call; the kernel reads them and writes only
        // each header's `msg_len`, inside `headers`.
        let result = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr().add(sent).cast(),
                (count - sent) as libc::c_uint,
                0,
            )
        };
        if result > 0 {
            sent += result as usize;
        } else {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The datagram at `sent` failed: skip it, send the rest.
            tracing::debug!(%error, peer = ?peers[sent], "udp send failed");
            sent += 1;
        }
    }
}

/// # Safety
/// `name` must point at a `sockaddr_storage` whose first `length` bytes are initialised.
unsafe fn socket_address(
    name: *const libc::sockaddr_storage,
    length: libc::socklen_t,
) -> Option<SocketAddr> {
    let family_end =
        std::mem::offset_of!(libc::sockaddr_storage, ss_family) + size_of::<libc::sa_family_t>();
    if (length as usize) < family_end {
        return None;
    }
    // SAFETY: the check above puts the family within the `length` initialised bytes.
    let family = unsafe { (*name).ss_family } as libc::c_int;
    match family {
        libc::AF_INET if length as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says this is a sockaddr_in, and the guard that its
            // `length` initialised bytes cover one.
            let v4 = unsafe { &*(name as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 if length as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says this is a sockaddr_in6, and the guard that its
            // `length` initialised bytes cover one.
            let v6 = unsafe { &*(name as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                u32::from_be(v6.sin6_flowinfo),
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn write_socket_address(
    into: &mut MaybeUninit<libc::sockaddr_storage>,
    address: SocketAddr,
) -> libc::socklen_t {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the family's fields below.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let length = match address {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo().to_be();
            sin6.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    into.write(storage);
    length as libc::socklen_t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 20], server.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut received = Received::new();
        let count = receive(&server, &mut received).unwrap();
        assert_eq!(count, 5);
        let mut replies = Replies::new();
        for (bytes, peer) in received.datagrams() {
            assert_eq!(peer, client.local_addr().unwrap());
            let buffer = replies.next_buffer().unwrap();
            buffer.clear();
            buffer.extend(bytes.iter().map(|b| b + 1));
            replies.commit(peer);
        }
        assert_eq!(replies.queued().count(), 5);
        send(&server, &replies);
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut buffer = [0u8; 64];
        for i in 0..5u8 {
            let (length, _) = client.recv_from(&mut buffer).unwrap();
            assert_eq!(&buffer[..length], &[i + 1; 20]);
        }
    }
}
