//! The network-namespace mechanism of egress control (Linux): a namespace with only loopback,
//! a listener inside it per allowed address, and a relay from each to the real address.
//!
//! Sockets belong to the network namespace they were created in, whichever thread later uses
//! them. So a short-lived thread of the host enters a new namespace (`unshare(CLONE_NEWNET)`
//! affects only the calling thread), brings its loopback up, gives it the allowed IPv4
//! addresses, binds one listener per allowed address and opens the namespace's descriptor; then
//! it ends. The listeners keep working from the host's runtime: a connection accepted on one is
//! answered by a connection the host makes from its own namespace. The keeper joins the
//! namespace (`setns`) before it forks the CLI, so everything of the session lives in it.
// Syscall sites: unshare, ioctl(SIOCSIF*) on an interface request; libc has no safe wrapper and
// nix has none for interface configuration.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::libc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use super::EgressPolicy;

/// A session's network namespace and its listeners: made by [`Sandbox::create`], relaying once
/// [`serve`](Sandbox::serve) is called, torn down (relays and their connections aborted) when
/// dropped. The namespace itself goes when its last process and this descriptor are gone.
#[derive(Debug)]
pub(crate) struct Sandbox {
    ns: File,
    listeners: Vec<(SocketAddr, StdListener)>,
    relays: Vec<AbortHandle>,
}

impl Sandbox {
    /// Makes the namespace and binds a listener for each allowed address.
    ///
    /// # Errors
    ///
    /// An address the mechanism cannot serve (port 0, an IPv6 address other than `::1`), or a
    /// system call refused (`unshare` needs `CAP_SYS_ADMIN`), named in the error.
    pub(crate) fn create(policy: &EgressPolicy) -> io::Result<Sandbox> {
        for addr in policy.allowed() {
            if addr.port() == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the allowed address {addr} has no port"),
                ));
            }
            if let IpAddr::V6(ip) = addr.ip()
                && !ip.is_loopback()
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the allowed address {addr}: IPv6 addresses other than [::1] are not supported"
                    ),
                ));
            }
        }
        let allowed = policy.allowed().to_vec();
        // A thread of its own: it enters the new namespace and must never run anything else.
        std::thread::Builder::new()
            .name("egress-netns".into())
            .spawn(move || inside_new_namespace(&allowed))
            .map_err(|e| io::Error::new(e.kind(), format!("spawning a thread: {e}")))?
            .join()
            .map_err(|_| io::Error::other("the namespace thread panicked"))?
    }

    /// The namespace's descriptor, for the keeper's `setns`.
    pub(crate) fn fd(&self) -> RawFd {
        self.ns.as_raw_fd()
    }

    /// Starts relaying: each connection accepted inside the namespace is joined to a new
    /// connection from the host to the same address. Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// No runtime, or a listener tokio cannot take.
    pub(crate) fn serve(&mut self, session: Arc<str>) -> io::Result<()> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(
                "the relays need a tokio runtime (launch from within one)",
            ));
        }
        for (addr, listener) in std::mem::take(&mut self.listeners) {
            let listener = TcpListener::from_std(listener)?;
            let session = session.clone();
            let relay = tokio::spawn(relay(listener, addr, session));
            self.relays.push(relay.abort_handle());
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for relay in &self.relays {
            relay.abort();
        }
    }
}

/// How long the relay waits for an allowed address to accept (the session's own connection was
/// accepted at once, so its client's connect timeout cannot bound this).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections inside the namespace and relays each to `target` from the host. The
/// relayed connections are children of this task: aborting it cuts them.
async fn relay(listener: TcpListener, target: SocketAddr, session: Arc<str>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut inbound, _)) => {
                    let session = session.clone();
                    connections.spawn(async move {
                        let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target));
                        match connect.await {
                            Ok(Ok(mut outbound)) => {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%session, %target, %error, "egress relay: the allowed address refused");
                            }
                            Err(_) => {
                                tracing::debug!(%session, %target, "egress relay: the allowed address did not answer in time");
                            }
                        }
                    });
                }
                Err(error) => {
                    // Out of descriptors, say: the listener stays; try again shortly.
                    tracing::warn!(%session, %target, %error, "egress relay: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Runs on the namespace thread: the new namespace, its loopback, the listeners, its descriptor.
fn inside_new_namespace(allowed: &[SocketAddr]) -> io::Result<Sandbox> {
    // SAFETY: unshare takes a flag word; it moves only this thread into a new namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("unshare(CLONE_NEWNET): {e} (a network namespace needs CAP_SYS_ADMIN)"),
        ));
    }
    let control = control_socket()?;
    set_up(&control, "lo")?;
    let mut alias = 0;
    for addr in allowed {
        if let IpAddr::V4(ip) = addr.ip()
            && !ip.is_loopback()
        {
            alias += 1;
            add_address(&control, &format!("lo:{alias}"), ip.octets())?;
        }
    }
    let mut listeners = Vec::with_capacity(allowed.len());
    for &addr in allowed {
        let listener = StdListener::bind(addr).map_err(|e| {
            io::Error::new(e.kind(), format!("binding {addr} in the namespace: {e}"))
        })?;
        listener.set_nonblocking(true)?;
        listeners.push((addr, listener));
    }
    let ns = File::open("/proc/thread-self/ns/net")
        .map_err(|e| io::Error::new(e.kind(), format!("opening the namespace: {e}")))?;
    Ok(Sandbox {
        ns,
        listeners,
        relays: Vec::new(),
    })
}

/// A socket to configure interfaces with.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An interface request naming `name`.
fn request(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain data; all zeroes is a valid (empty) request.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name `{name}` is too long"),
        ));
    }
    for (slot, b) in req.ifr_name.iter_mut().zip(bytes) {
        *slot = *b as libc::c_char;
    }
    Ok(req)
}

fn ioctl(
    control: &OwnedFd,
    what: &str,
    op: libc::c_ulong,
    req: &mut libc::ifreq,
) -> io::Result<()> {
    // SAFETY: an interface ioctl reads and writes exactly one ifreq, which `req` is.
    if unsafe { libc::ioctl(control.as_raw_fd(), op as _, req as *mut libc::ifreq) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

/// Brings interface `name` up.
fn set_up(control: &OwnedFd, name: &str) -> io::Result<()> {
    let mut req = request(name)?;
    ioctl(
        control,
        "reading the loopback's flags",
        libc::SIOCGIFFLAGS,
        &mut req,
    )?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    ioctl(
        control,
        "bringing the loopback up",
        libc::SIOCSIFFLAGS,
        &mut req,
    )
}

/// Gives the loopback the address `ip`/32 through the alias interface `name` (`lo:N`).
fn add_address(control: &OwnedFd, name: &str, ip: [u8; 4]) -> io::Result<()> {
    let sockaddr = |octets: [u8; 4]| {
        // SAFETY: sockaddr_in is plain data; zeroes then the fields make a valid address.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from_ne_bytes(octets);
        // SAFETY: sockaddr_in and sockaddr have the same size on Linux; the kernel reads it as
        // the family says.
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
    };
    let shown = std::net::Ipv4Addr::from(ip);
    let mut req = request(name)?;
    req.ifr_ifru.ifru_addr = sockaddr(ip);
    ioctl(
        control,
        &format!("adding {shown} to the loopback"),
        libc::SIOCSIFADDR,
        &mut req,
    )?;
    let mut req = request(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr([255, 255, 255, 255]);
    ioctl(
        control,
        &format!("setting the netmask of {shown}"),
        libc::SIOCSIFNETMASK,
        &mut req,
    )?;
    set_up(control, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_it_cannot_serve_are_refused_before_anything_is_made() {
        let no_port = EgressPolicy::deny_all().allow("127.0.0.1:0".parse().unwrap());
        let err = Sandbox::create(&no_port).unwrap_err();
        assert!(err.to_string().contains("has no port"), "{err}");
        let v6 = EgressPolicy::deny_all().allow("[2001:db8::1]:443".parse().unwrap());
        let err = Sandbox::create(&v6).unwrap_err();
        assert!(err.to_string().contains("IPv6"), "{err}");
    }
}
