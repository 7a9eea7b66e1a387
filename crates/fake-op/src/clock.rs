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

/// `YYYY/MM/DD HH:MM:SS` in local time, as in op's `[ERROR]` lines (docs/op-behaviour.md §8).
pub fn error_timestamp(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y/%m/%d %H:%M:%S")
            .to_string(),
        // Out of jiff's range (years beyond ±9999): the UTC fields.
        Err(_) => {
            let (y, mo, d, h, mi, s) = civil(ms);
            format!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}")
        }
    }
}

/// UTC calendar fields of a timestamp: (year, month, day, hour, minute, second).
fn civil(ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2020-12-04T00:50:48Z`, the form of op's JSON timestamps.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into milliseconds; `None` if malformed.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest.get(1..3)?.parse::<i64>().ok()? * 60
                + rest.get(4..6)?.parse::<i64>().ok()?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
