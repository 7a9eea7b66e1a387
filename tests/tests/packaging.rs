//! Issue 15: packaging/dist.sh, the one recipe install.sh and the Debian package use for man
//! pages, completions and the packaged user units, makes every file from the built binaries
//! and systemd/. (.ci/package builds, installs and removes the real package as root.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use op_session_e2e::Finish as _;
use op_session_e2e::bins;

fn gunzip(path: &Path) -> String {
    let out = Command::new("gzip").arg("-dc").arg(path).finish().unwrap();
    assert!(out.status.success(), "{} is not gzip", path.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dist_makes_man_pages_completions_and_units_for_the_packaged_path() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let bin_dir = bins().client.parent().unwrap();
    let daemon = bins().daemon.display().to_string();
    let st = Command::new("bash")
        .arg(root.join("packaging/dist.sh"))
        .arg(bin_dir)
        .arg(&out)
        .arg(&daemon)
        .finish_status()
        .unwrap();
    assert!(st.success());

    let client_page = gunzip(&out.join("man/op-session.1.gz"));
    assert!(client_page.contains(".TH op-session 1"), "{client_page}");
    for sub in ["doctor", "agent", "run"] {
        assert!(
            client_page.contains(sub),
            "op-session(1) does not mention {sub}"
        );
    }
    let daemon_page = gunzip(&out.join("man/op-sessiond.8.gz"));
    assert!(daemon_page.contains(".TH op-sessiond 8"), "{daemon_page}");
    assert!(daemon_page.contains("check\\-config"), "{daemon_page}");
    assert!(
        !daemon_page.contains("\\-\\-man"),
        "the hidden --man flag is documented"
    );

    for (file, marker) in [
        ("completions/op-session.bash", "complete -F _op__session"),
        ("completions/_op-session", "#compdef op-session"),
        ("completions/op-session.fish", "complete -c op-session"),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.contains(marker), "{file} lacks {marker}");
    }
    let bash = Command::new("bash")
        .arg("-n")
        .arg(out.join("completions/op-session.bash"))
        .finish_status()
        .unwrap();
    assert!(bash.success(), "the bash completion does not parse");

    for unit in ["op-sessiond.socket", "op-sessiond.service"] {
        let shipped = std::fs::read_to_string(root.join("systemd").join(unit)).unwrap();
        let packaged = std::fs::read_to_string(out.join("systemd").join(unit)).unwrap();
        // Only two comment lines on top and the daemon's path differ from systemd/.
        let body: Vec<&str> = packaged.lines().skip(2).collect();
        let expected = shipped.replace(
            "ExecStart=/usr/local/bin/op-sessiond",
            &format!("ExecStart={daemon}"),
        );
        assert_eq!(body, expected.lines().collect::<Vec<_>>(), "{unit}");
    }
    let Some(analyze) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("systemd-analyze"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("systemd-analyze is not installed; the units are not verified here");
        return;
    };
    let rt = tmp.path().join("rt");
    std::fs::create_dir_all(&rt).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let verify = Command::new(analyze)
        .args(["verify", "--user", "--man=no"])
        .arg(out.join("systemd/op-sessiond.socket"))
        .arg(out.join("systemd/op-sessiond.service"))
        .env("XDG_RUNTIME_DIR", &rt)
        .finish()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    assert!(
        !stderr.lines().any(|l| l.contains("op-sessiond")),
        "systemd complains: {stderr}"
    );
}
