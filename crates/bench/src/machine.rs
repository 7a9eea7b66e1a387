//! What the figures were measured on: CPUs, memory, kernel, compiler, commit.
//!
//! Reads /proc and asks `rustc` and `git`; anything unavailable is reported as "unknown"
//! rather than failing the run.

use std::process::Command;

fn first_line_of(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// The value of the first `key : value` line of a /proc file such as cpuinfo or meminfo.
pub fn proc_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The 1, 5 and 15 minute load averages (other work on a shared machine skews timings).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .unwrap_or_else(|| "unknown".into())
}

/// Label/value pairs for the report.
pub fn describe() -> Vec<(String, String)> {
    let unknown = || "unknown".to_string();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| unknown());
    let memory = proc_field(&meminfo, "MemTotal")
        .and_then(|v| v.trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(unknown);
    let kernel = nix::sys::utsname::uname()
        .map(|u| {
            format!(
                "{} {} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy(),
                u.machine().to_string_lossy()
            )
        })
        .unwrap_or_else(|_| unknown());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let root = crate::world::workspace_root();
    let root = root.to_string_lossy();
    let commit = first_line_of("git", &["-C", &root, "rev-parse", "--short", "HEAD"]);
    let dirty = first_line_of("git", &["-C", &root, "status", "--porcelain"]).is_some();
    vec![
        ("CPUs (nproc)".into(), cpus),
        (
            "CPU model".into(),
            proc_field(&cpuinfo, "model name").unwrap_or_else(unknown),
        ),
        ("memory".into(), memory),
        ("kernel".into(), kernel),
        (
            "rustc".into(),
            first_line_of(&rustc, &["--version"]).unwrap_or_else(unknown),
        ),
        (
            "commit".into(),
            commit
                .map(|c| {
                    if dirty {
                        format!("{c} (with uncommitted changes in the tree)")
                    } else {
                        c
                    }
                })
                .unwrap_or_else(unknown),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_found_by_exact_key() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nmodel\t\t: 1\n";
        assert_eq!(
            proc_field(text, "model name").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(proc_field(text, "model").as_deref(), Some("1"));
        assert_eq!(proc_field(text, "flags"), None);
    }
}
