//! Fuzz the daemon's view of a connection: framing, then request decoding.
//! Any input must give a frame, "need more", or an error; never a panic or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use op_session_protocol::{decode_event, decode_request, frame, MAX_REQUEST_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((payload, used))) = frame::decode(rest, MAX_REQUEST_FRAME) {
        let _ = decode_request(payload);
        let _ = decode_event(payload);
        rest = &rest[used..];
    }
    let mut r = data;
    let _ = frame::read_frame(&mut r, MAX_REQUEST_FRAME);
});
