//! Durations as people read them, in every message op-session shows (status, grants, "retry
//! in"). The wire carries seconds; both sides render them with [`duration`].

/// Seconds as people read them: `45s`, `12m 05s`, `3h 07m`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(725), "12m 05s");
        assert_eq!(duration(3 * 3600 + 7 * 60 + 59), "3h 07m");
    }
}
