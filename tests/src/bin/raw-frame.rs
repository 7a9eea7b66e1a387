//! Test helper: connect to a socket, send raw bytes (hex on argv), print the answer.
//!
//! Used by the end-to-end tests for what the real client never sends: garbage, oversized and
//! truncated frames, other protocol versions, and connections from another uid (run under
//! setpriv). Prints the daemon's reply payload (JSON) on stdout, or nothing if it closed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(sock), Some(hex)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: raw-frame SOCKET HEXBYTES");
        std::process::exit(64);
    };
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let mut s = match UnixStream::connect(sock) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connect: {e}");
            std::process::exit(69);
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(&bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    if out.len() > 4 {
        println!("{}", String::from_utf8_lossy(&out[4..]));
    }
}
