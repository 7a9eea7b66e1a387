//! Small encodings op's data needs: base64url (session and service-account tokens), base32
//! and SHA-1/HMAC (TOTP codes), and the identifiers op hands out.
//!
//! Hand-written so each invocation stays a few milliseconds and the crate adds no dependency
//! for forty lines of arithmetic. Randomness comes from `/dev/urandom`.

use std::io::Read;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as Go's `base64.RawURLEncoding`.
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decode unpadded base64url; the error is Go's `illegal base64 data at input byte N`.
pub fn base64url_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(format!("illegal base64 data at input byte {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if s.len() % 4 == 1 {
        return Err(format!("illegal base64 data at input byte {}", s.len() - 1));
    }
    Ok(out)
}

/// Decode RFC 4648 base32 (TOTP secrets); spaces, padding and case are ignored.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            b'=' | b' ' | b'-' => continue,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// SHA-1 (FIPS 180-4). Only for TOTP, where RFC 6238 requires it.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..20 => ((b & c) | (!b & d), 0x5A82_7999),
                20..40 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&sha1(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(msg);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

/// The current 6-digit TOTP code (RFC 6238, SHA-1, 30 s) for a base32 secret or an
/// `otpauth://` URI carrying `secret=`; `None` when the secret is unusable.
pub fn totp(secret_or_uri: &str, now_ms: i64) -> Option<String> {
    let secret = match secret_or_uri.strip_prefix("otpauth://") {
        Some(uri) => uri
            .split_once('?')?
            .1
            .split('&')
            .find_map(|kv| kv.strip_prefix("secret="))?,
        None => secret_or_uri,
    };
    let key = base32_decode(secret)?;
    if key.is_empty() {
        return None;
    }
    let counter = (now_ms.div_euclid(1000) / 30) as u64;
    let mac = hmac_sha1(&key, &counter.to_be_bytes());
    let off = (mac[19] & 0x0f) as usize;
    let bin = (u32::from(mac[off] & 0x7f) << 24)
        | (u32::from(mac[off + 1]) << 16)
        | (u32::from(mac[off + 2]) << 8)
        | u32::from(mac[off + 3]);
    Some(format!("{:06}", bin % 1_000_000))
}

/// `n` bytes from the system's random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if filled.is_err() {
        // No urandom (should not happen on Linux/macOS): mix the clock and pid instead. The
        // simulator's tokens protect nothing real, so this is enough to keep them distinct.
        let seed = format!("{}:{}", crate::clock::real_now_ms(), std::process::id());
        let mut block = sha1(seed.as_bytes()).to_vec();
        for (i, b) in buf.iter_mut().enumerate() {
            if i % 20 == 0 && i > 0 {
                block = sha1(&block).to_vec();
            }
            *b = block[i % 20];
        }
    }
    buf
}

/// A session token: 32 random bytes, unpadded base64url, 43 characters (docs/op-behaviour.md §1.2).
pub fn session_token() -> String {
    base64url_encode(&random_bytes(32))
}

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn id_from(bytes: &[u8], alphabet: &[u8]) -> String {
    bytes
        .iter()
        .take(26)
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// A fresh item/vault ID: 26 lower-case letters and digits.
pub fn random_id() -> String {
    id_from(&random_bytes(26), LOWER_ALNUM)
}

fn seeded(seed: &str) -> Vec<u8> {
    let mut out = sha1(seed.as_bytes()).to_vec();
    out.extend_from_slice(&sha1(format!("{seed}#2").as_bytes()));
    out
}

/// A stable item/vault/field ID derived from fixture content, so fixtures need not spell IDs.
pub fn derived_id(seed: &str) -> String {
    id_from(&seeded(seed), LOWER_ALNUM)
}

/// A stable user/account UUID: 26 upper-case letters and digits (docs/op-behaviour.md §1.2).
pub fn derived_uuid(seed: &str) -> String {
    id_from(&seeded(seed), UPPER_ALNUM)
}

/// True for op's unique-ID shape: exactly 26 lower-case letters and digits.
pub fn is_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_reports_go_offsets() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).collect();
            assert_eq!(base64url_decode(&base64url_encode(&data)).unwrap(), data);
        }
        assert_eq!(session_token().len(), 43);
        assert_eq!(
            base64url_decode("abcdefghijkl!x").unwrap_err(),
            "illegal base64 data at input byte 12"
        );
    }

    #[test]
    fn sha1_and_totp_match_the_rfcs() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 → last six digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"
        assert_eq!(totp(secret, 59_000).unwrap(), "287082");
        let uri = format!("otpauth://totp/x?secret={secret}&issuer=y");
        assert_eq!(totp(&uri, 1_111_111_109_000).unwrap(), "081804");
    }
}
