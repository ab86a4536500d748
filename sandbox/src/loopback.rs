//! A worker's ways out for `Network::Gateway`: in a network namespace of
//! the worker's own, the loopback interface brought up and a TCP listener
//! on `127.0.0.1:port` for each of its ports, whose descriptors go to the
//! coordinator.
//!
//! The coordinator accepts on those listeners from outside the namespace
//! (a socket keeps the namespace it was made in, whoever holds it), so
//! nothing of the task's has to forward anything: the agent CLI connects
//! to its port, and the connection lands in the coordinator's gateway; a
//! task with a network allow-list connects to its egress proxy's port, and
//! the coordinator decides where it may go. The namespace has no other
//! interface and no route, so the host's loopback, other machines and DNS
//! servers are out of reach whatever the worker tries; Landlock (see
//! `confine::ruleset`) narrows TCP further to a `connect` to these ports.

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::policy::GatewayPorts;

/// Runs in the worker's init, before the worker exists: moves init into a
/// new network namespace, brings its loopback up, listens on each of
/// `ports` there and sends the listeners over `handoff` in one message, in
/// the order of the ports (then closes its own copies).
pub(crate) fn listen_and_hand_over(ports: GatewayPorts, handoff: RawFd) -> std::io::Result<()> {
    // SAFETY: a plain syscall; init is single-threaded.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    loopback_up()?;
    // At most two (`GatewayPorts`): on the stack, as init allocates
    // nothing it need not.
    let mut listeners: [Option<TcpListener>; 2] = [None, None];
    for (slot, port) in listeners.iter_mut().zip(ports.iter()) {
        *slot = Some(TcpListener::bind(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            port,
        ))?);
    }
    let mut fds = [0 as RawFd; 2];
    let mut count = 0;
    for listener in listeners.iter().flatten() {
        fds[count] = listener.as_raw_fd();
        count += 1;
    }
    let rights = [ControlMessage::ScmRights(&fds[..count])];
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

/// Receives the listeners a worker's init sent on `sock` (the
/// coordinator's end of `Policy::gateway_handoff`'s pair), in the order of
/// the policy's ports. Fails if the socket closes first: the worker never
/// got that far.
pub async fn receive_listeners(
    sock: std::os::unix::net::UnixStream,
) -> std::io::Result<Vec<TcpListener>> {
    use nix::sys::socket::{ControlMessageOwned, recvmsg};
    use std::os::fd::FromRawFd as _;
    sock.set_nonblocking(true)?;
    let sock = tokio::net::UnixStream::from_std(sock)?;
    loop {
        sock.readable().await?;
        let received = sock.try_io(tokio::io::Interest::READABLE, || {
            let mut byte = [0u8; 1];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([RawFd; 2]);
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
        if fds.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                if bytes == 0 {
                    "the worker's sandbox closed before it sent its gateway listeners"
                } else {
                    "the worker's sandbox sent no listener"
                },
            ));
        }
        // SAFETY: the kernel just gave us these descriptors; they are ours
        // alone, and each is a listening TCP socket init made.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let listeners = fds
            .into_iter()
            .map(|fd| unsafe { TcpListener::from_raw_fd(fd) })
            .collect();
        return Ok(listeners);
    }
}
