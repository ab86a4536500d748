//! A worker's one way out for `Network::Gateway`: in a network namespace
//! of the worker's own, the loopback interface brought up and a TCP
//! listener on `127.0.0.1:port`, whose descriptor goes to the coordinator.
//!
//! The coordinator accepts on that listener from outside the namespace (a
//! socket keeps the namespace it was made in, whoever holds it), so nothing
//! of the task's has to forward anything: the agent CLI connects to its
//! port, and the connection lands in the coordinator's gateway. The
//! namespace has no other interface and no route, so the host's loopback,
//! other machines and DNS servers are out of reach whatever the worker
//! tries; Landlock (see `confine::ruleset`) narrows TCP further to a
//! `connect` to this port.

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// Runs in the worker's init, before the worker exists: moves init into a
/// new network namespace, brings its loopback up, listens on `port` there
/// and sends the listener over `handoff` (then closes its own copies).
pub(crate) fn listen_and_hand_over(port: u16, handoff: RawFd) -> std::io::Result<()> {
    // SAFETY: a plain syscall; init is single-threaded.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    loopback_up()?;
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    let fds = [listener.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let byte = [0u8];
    sendmsg::<()>(
        handoff,
        &[IoSlice::new(&byte)],
        &rights,
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// `ip link set lo up` in the current network namespace.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a socket only for the ioctl, closed below.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `ifreq` is plain data; all zeroes is a valid value.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we own;
    // `ifru_flags` is the member both use.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut request) == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &request) == -1 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: `sock` is ours and not used again.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::close(sock);
    }
    result
}

/// Receives the listener a worker's init sent on `sock` (the coordinator's
/// end of `Policy::gateway_handoff`'s pair). Fails if the socket closes
/// first: the worker never got that far.
pub async fn receive_listener(
    sock: std::os::unix::net::UnixStream,
) -> std::io::Result<TcpListener> {
    use nix::sys::socket::{ControlMessageOwned, recvmsg};
    use std::os::fd::FromRawFd as _;
    sock.set_nonblocking(true)?;
    let sock = tokio::net::UnixStream::from_std(sock)?;
    loop {
        sock.readable().await?;
        let received = sock.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let msg = recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut fds = Vec::new();
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(rights) = c {
                    fds.extend(rights);
                }
            }
            Ok((msg.bytes, fds))
        });
        let (bytes, fds) = match received {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => other?,
        };
        let mut fds = fds.into_iter();
        let Some(first) = fds.next() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                if bytes == 0 {
                    "the worker's sandbox closed before it sent its gateway listener"
                } else {
                    "the worker's sandbox sent no listener"
                },
            ));
        };
        // SAFETY: the kernel just gave us these descriptors; they are ours
        // alone. Any beyond the first are closed.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let listener = unsafe {
            for extra in fds {
                drop(std::os::fd::OwnedFd::from_raw_fd(extra));
            }
            TcpListener::from_raw_fd(first)
        };
        return Ok(listener);
    }
}
