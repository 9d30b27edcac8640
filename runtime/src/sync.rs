//! The parent <-> container init channel: a SOCK_SEQPACKET socketpair, one
//! message per packet, an fd attached where a message carries one.

use anyhow::{bail, Context, Result};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// parent -> init: the process is in its cgroup and its uid_map/gid_map
    /// are written; go on.
    Proceed,
    /// init -> parent: namespaces and mounts exist; run createRuntime/prestart hooks.
    RunRuntimeHooks,
    /// parent -> init: go on; carries the container state JSON for the
    /// hooks the init runs itself.
    Continue(String),
    /// init -> parent: here is the pty master (fd attached).
    Console,
    /// init -> parent: the seccomp notification fd (attached), for the listener.
    Seccomp,
    /// init -> parent: set up and waiting for start.
    Ready,
    /// either way: what failed.
    Error(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        let (tag, text) = match self {
            Msg::Proceed => (b'p', ""),
            Msg::RunRuntimeHooks => (b'h', ""),
            Msg::Continue(state) => (b'c', state.as_str()),
            Msg::Console => (b't', ""),
            Msg::Ready => (b'r', ""),
            Msg::Seccomp => (b's', ""),
            Msg::Error(e) => (b'e', e.as_str()),
        };
        let mut v = vec![tag];
        v.extend_from_slice(text.as_bytes());
        v
    }

    fn decode(buf: &[u8]) -> Result<Msg> {
        Ok(match buf.first() {
            Some(b'p') => Msg::Proceed,
            Some(b'h') => Msg::RunRuntimeHooks,
            Some(b'c') => Msg::Continue(String::from_utf8_lossy(&buf[1..]).into_owned()),
            Some(b't') => Msg::Console,
            Some(b'r') => Msg::Ready,
            Some(b's') => Msg::Seccomp,
            Some(b'e') => Msg::Error(String::from_utf8_lossy(&buf[1..]).into_owned()),
            Some(t) => bail!("unknown sync message {t}"),
            None => bail!("the other side closed the sync channel"),
        })
    }
}

pub struct Channel {
    fd: OwnedFd,
}

impl From<OwnedFd> for Channel {
    /// One end of a SOCK_SEQPACKET pair that came over another channel.
    fn from(fd: OwnedFd) -> Channel {
        Channel { fd }
    }
}

/// Both ends; each side drops the one it does not use after the fork.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("socketpair for the init sync channel")?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        let fds: Vec<RawFd> = fd.into_iter().collect();
        self.send_bytes(&msg.encode(), &fds)
    }

    pub fn recv(&self) -> Result<(Msg, Option<OwnedFd>)> {
        let (bytes, fds) = self.recv_bytes()?;
        Ok((Msg::decode(&bytes)?, fds.into_iter().next()))
    }

    /// One packet of `bytes` with up to four fds attached.
    pub fn send_bytes(&self, bytes: &[u8], fds: &[RawFd]) -> Result<()> {
        let cmsg: Vec<ControlMessage> = if fds.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(fds)]
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .context("sending on the sync channel")?;
        Ok(())
    }

    /// The next packet and the fds that came with it; an empty packet is
    /// the other side closing.
    pub fn recv_bytes(&self) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
        // Its size first (MSG_PEEK|MSG_TRUNC gives a packet's whole length;
        // without room for control data no fd is taken): any size fits.
        let size = loop {
            let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC;
            match nix::sys::socket::recv(self.fd.as_raw_fd(), &mut [], peek) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.context("reading the sync channel")?,
            }
        };
        let mut buf = vec![0u8; size.max(1)];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
        let (len, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_CMSG_CLOEXEC;
            let msg = loop {
                match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg_space), flags) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.context("reading the sync channel")?,
                }
            };
            let mut fds = vec![];
            for c in msg.cmsgs().context("reading control messages")? {
                if let ControlMessageOwned::ScmRights(list) = c {
                    // SAFETY: the kernel just gave us these fds.
                    fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
            if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                bail!("a sync message over {} bytes was cut", buf.len());
            }
            (msg.bytes, fds)
        };
        buf.truncate(len);
        Ok((buf, fds))
    }

    /// Receives the next message; an Error message becomes the error.
    pub fn recv_ok(&self) -> Result<(Msg, Option<OwnedFd>)> {
        match self.recv()? {
            (Msg::Error(e), _) => bail!("{e}"),
            other => Ok(other),
        }
    }

    /// Receives and insists on `want`.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv_ok()?.0 {
            m if m == want => Ok(()),
            other => bail!("sync: expected {want:?}, got {other:?}"),
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Connects to the unix socket at `path` and sends `payload` with `fd`
/// attached (SCM_RIGHTS): the console socket and the seccomp listener.
pub fn send_fd_to(path: &std::path::Path, payload: &[u8], fd: RawFd, what: &str) -> Result<()> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connecting to {what} {}", path.display()))?;
    let fds = [fd];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .with_context(|| format!("sending to {what} {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_fd() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Ready).unwrap();
        assert_eq!(b.recv().unwrap().0, Msg::Ready);
        let f = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::Console, Some(f.as_raw_fd())).unwrap();
        let (m, fd) = a.recv().unwrap();
        assert_eq!(m, Msg::Console);
        assert!(fd.is_some());
        a.send(&Msg::Error("boom".into())).unwrap();
        assert_eq!(b.expect(Msg::Ready).unwrap_err().to_string(), "boom");
        a.send(&Msg::Continue("{}".into())).unwrap();
        assert_eq!(b.recv().unwrap().0, Msg::Continue("{}".into()));
        drop(a);
        assert!(b.recv().is_err());
    }
}
