//! Telling a service manager how we are doing (`sd_notify`'s wire format, no libsystemd).
//!
//! Owns sending `READY=1` once the daemon serves and `STOPPING=1` when it begins to stop, to
//! the datagram socket named by `NOTIFY_SOCKET` (a path, or `@name` for Linux's abstract
//! namespace). Silent when the variable is unset.

use std::os::unix::net::UnixDatagram;

fn send(msg: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
                .is_ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            false
        }
    } else {
        sock.send_to(msg.as_bytes(), std::path::Path::new(&path))
            .is_ok()
    }
}

/// `READY=1`, with our pid (we may have forked).
pub fn ready() -> bool {
    send(&format!(
        "READY=1\nMAINPID={}\nSTATUS=serving",
        std::process::id()
    ))
}

/// `STOPPING=1`.
pub fn stopping() -> bool {
    send("STOPPING=1")
}
