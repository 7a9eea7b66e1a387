//! The simulated clock, and every way `op` writes a time.
//!
//! Simulated time is the real wall clock plus an offset kept in the state (`fake-op-ctl
//! advance`), so tests can jump past the 30-minute idle limit without sleeping. All deadlines
//! (sessions, app authorizations, rate-limit windows, TOTP codes) use it; so do the `[ERROR]`
//! timestamps, which are local time like op's.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in one minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The real wall clock, in milliseconds since the Unix epoch.
pub fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Simulated now: real time plus the state's offset.
pub fn now_ms(offset_ms: i64) -> i64 {
    real_now_ms() + offset_ms
}

/// A timestamp as jiff holds it, clamped to jiff's range (years ±9999).
fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// `YYYY/MM/DD HH:MM:SS` in local time, as in op's `[ERROR]` lines (docs/op-behaviour.md §8).
pub fn error_timestamp(ms: i64) -> String {
    timestamp(ms)
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%Y/%m/%d %H:%M:%S")
        .to_string()
}

/// `2020-12-04T00:50:48Z`, the form of op's JSON timestamps (UTC, whole seconds).
pub fn rfc3339(ms: i64) -> String {
    timestamp(ms).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parse an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) into milliseconds;
/// `None` if malformed.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(jiff::Timestamp::as_millisecond)
}

/// op's human-readable relative times: `now`, `3 minutes ago`, `2 years ago`.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - then_ms).max(0) / 1000;
    let (n, unit) = match secs {
        0..60 => return "now".to_string(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        86_400..2_592_000 => (secs / 86_400, "day"),
        2_592_000..31_536_000 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Parse `31m`, `2s`, `13h`, `1h30m`, `1500ms`, `2d` into milliseconds (fake-op-ctl advance).
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s.trim();
    let negative = rest.starts_with('-');
    if negative {
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => 24 * HOUR_MS,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(factor)?)?;
    }
    Some(if negative { -total } else { total })
}

/// `58 minutes` / `23 hours and 59 minutes`: the retry wording of the 429 texts (docs/op-behaviour.md §6).
pub fn retry_in(ms: i64) -> String {
    let minutes = ms.max(0) / MINUTE_MS;
    let (h, m) = (minutes / 60, minutes % 60);
    let plural = |n: i64, w: &str| {
        if n == 1 {
            format!("1 {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    if h > 0 && m == 0 {
        plural(h, "hour")
    } else if h > 0 {
        format!("{} and {}", plural(h, "hour"), plural(m, "minute"))
    } else {
        plural(m, "minute")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let ms = parse_rfc3339("2020-12-04T00:50:48Z").unwrap();
        assert_eq!(rfc3339(ms), "2020-12-04T00:50:48Z");
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2020-12-04T00:50:48.250Z"), Some(ms + 250));
        assert_eq!(parse_rfc3339("2020-12-04 garbage"), None);
        assert_eq!(rfc3339(ms + 999), "2020-12-04T00:50:48Z");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("31m"), Some(31 * MINUTE_MS));
        assert_eq!(parse_duration("1h30m"), Some(90 * MINUTE_MS));
        assert_eq!(parse_duration("2s"), Some(2000));
        assert_eq!(parse_duration("5q"), None);
    }

    #[test]
    fn humanized_times() {
        assert_eq!(ago(0, 30_000), "now");
        assert_eq!(ago(0, 3 * MINUTE_MS), "3 minutes ago");
        assert_eq!(ago(0, HOUR_MS), "1 hour ago");
        assert_eq!(retry_in(58 * MINUTE_MS), "58 minutes");
        assert_eq!(
            retry_in(24 * HOUR_MS - MINUTE_MS),
            "23 hours and 59 minutes"
        );
    }
}
