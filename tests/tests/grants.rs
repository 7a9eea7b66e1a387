//! Scoped grants: a sub-agent, a container or a remote machine gets a second socket limited to
//! some vaults, references and verbs, with a shorter life, and loses it on revoke, on time, on
//! its read budget, or when the session it draws on ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use op_session_e2e::Finish as _;
use op_session_e2e::{Out, World, bins, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const STRIPE: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn world(config: &str) -> World {
    let w = World::new(config);
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
    w
}

/// Open a grant; returns its socket.
fn grant(w: &World, args: &[&str]) -> PathBuf {
    let mut a = vec!["grant"];
    a.extend_from_slice(args);
    let out = w.run(&a);
    assert_eq!(out.code, 0, "grant: {}", out.stderr);
    let mut lines = out.stdout.lines();
    let socket = PathBuf::from(lines.next().unwrap());
    assert_eq!(
        lines.next().unwrap(),
        format!("OPSESSION_SOCKET={}", socket.display())
    );
    socket
}

/// `op-session ARGS` against a grant's socket, as the sub-agent would run it.
fn via(w: &World, socket: &Path, args: &[&str]) -> Out {
    w.client(args)
        .env("OPSESSION_SOCKET", socket)
        .finish()
        .unwrap()
        .into()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_grant_serves_its_scope_and_nothing_else() {
    let w = world("");
    let g = grant(&w, &["sub", "--vault", "Dev", "--ttl", "10m"]);
    assert_eq!(mode(&g), 0o600);
    assert_eq!(mode(g.parent().unwrap()), 0o700);
    let out = via(&w, &g, &["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{STRIPE}\n"));
    // Outside its vaults: 78, naming the grant.
    let out = via(&w, &g, &["read", "op://Prod/Stripe/key"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("grant sub"), "{}", out.stderr);
    // What a grant socket never does (`lock` through it gives the grant up: tested below).
    for args in [
        &["stop"][..],
        &["grant", "other"],
        &["grants"],
        &["revoke", "someone-else"],
    ] {
        let out = via(&w, &g, args);
        assert_eq!(out.code, 78, "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        w.status()["sessions"].as_array().unwrap().len(),
        1,
        "a refused stop stopped the daemon"
    );
    let out = via(&w, &g, &["op", "item", "get", "Stripe", "--vault", "Dev"]);
    assert_eq!(out.code, 78, "passthrough needs --allow: {}", out.stderr);
    // The main socket lists it, with its scope and reads.
    let list: serde_json::Value =
        serde_json::from_str(&w.run(&["grants", "--json"]).stdout).unwrap();
    assert_eq!(list[0]["name"], "sub");
    assert_eq!(list[0]["vaults"][0], "Dev");
    assert_eq!(list[0]["reads_used"], 1);
    // The main socket still serves everything.
    assert_eq!(w.run(&["read", "op://Prod/Stripe/key"]).code, 0);
    // Audit records carry the grant.
    let audit = std::fs::read_to_string(w.state.join("op-session/audit.jsonl")).unwrap();
    assert!(audit.contains("\"grant\":\"sub\""), "{audit}");
    // Revoked: the socket is gone, and callers get "unavailable", never a new daemon.
    assert_eq!(w.run(&["revoke", "sub"]).code, 0);
    assert!(!g.exists() && !g.parent().unwrap().exists());
    let out = via(&w, &g, &["read", "op://Dev/Stripe/key"]);
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(
        !g.exists(),
        "a client started a daemon on the grant's socket"
    );
    w.run(&["stop"]);
}

#[test]
fn references_verbs_and_passthrough_are_limited_to_what_was_granted() {
    let w = world("[policy]\nallow_destructive = true");
    let g = grant(
        &w,
        &[
            "refs",
            "--vault",
            "Dev",
            "--ref",
            "op://Dev/Stripe/key",
            "--allow",
            "read",
        ],
    );
    assert_eq!(via(&w, &g, &["read", "op://dev/stripe/key"]).code, 0);
    let out = via(&w, &g, &["read", "op://Dev/Database/password"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    let out: Out = w
        .client(&["run", "--", "printenv", "K"])
        .env("OPSESSION_SOCKET", &g)
        .env("K", "op://Dev/Stripe/key")
        .finish()
        .unwrap()
        .into();
    assert_eq!(out.code, 78, "run is not among its verbs: {}", out.stderr);
    let p = grant(&w, &["pt", "--vault", "Dev", "--allow", "item get"]);
    let out = via(&w, &p, &["op", "item", "get", "Stripe", "--vault", "Dev"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        &["op", "item", "get", "Stripe", "--vault", "Prod"][..],
        &["op", "item", "get", "Stripe"],
        &["op", "item", "delete", "Stripe", "--vault", "Dev"],
    ] {
        let out = via(&w, &p, line);
        assert_eq!(out.code, 78, "{line:?}: {}", out.stderr);
    }
    let n = grant(&w, &["nopt", "--allow", "item get", "--no-passthrough"]);
    assert_eq!(
        via(&w, &n, &["op", "item", "get", "Stripe", "--vault", "Dev"]).code,
        78
    );
    assert!(
        !w.calls().iter().any(|c| c["command"] == "item delete"),
        "a delete went through a grant"
    );
    w.run(&["stop"]);
}

#[test]
fn a_grant_ends_with_its_ttl_its_budget_and_its_session() {
    let w = world("");
    let t = grant(&w, &["short", "--ttl", "1s"]);
    assert_eq!(via(&w, &t, &["read", "op://Dev/Stripe/key"]).code, 0);
    assert!(
        wait_until(Duration::from_secs(5), || !t.exists()),
        "the TTL passed and the socket is still there"
    );
    assert_eq!(via(&w, &t, &["read", "op://Dev/Stripe/key"]).code, 69);

    let b = grant(&w, &["budget", "--max-reads", "2"]);
    assert_eq!(via(&w, &b, &["read", "op://Dev/Stripe/key"]).code, 0);
    let out = via(
        &w,
        &b,
        &["read", "op://Dev/Stripe/key", "op://Dev/Database/username"],
    );
    assert_eq!(out.code, 78, "over budget: {}", out.stderr);
    assert!(out.stderr.contains("budget"), "{}", out.stderr);
    assert_eq!(via(&w, &b, &["read", "op://Dev/Database/username"]).code, 0);
    assert!(
        wait_until(Duration::from_secs(2), || !b.exists()),
        "a spent grant keeps its socket"
    );

    let s = grant(&w, &["session"]);
    assert_eq!(w.run(&["lock"]).code, 0);
    assert!(
        wait_until(Duration::from_secs(5), || !s.exists()),
        "the session ended and its grant did not"
    );
    assert_eq!(via(&w, &s, &["read", "op://Dev/Stripe/key"]).code, 69);
    w.run(&["stop"]);
}

/// A connection kept open on a grant's socket is held to the grant: out-of-scope requests on
/// it are refused as on any connection, and when the grant is revoked the connection ends, so
/// nothing kept open outlives the grant.
#[test]
fn a_reused_connection_on_a_grant_ends_with_the_grant() {
    let w = world("");
    let g = grant(&w, &["kept", "--vault", "Dev", "--ttl", "10m"]);
    let mut c = op_session_e2e::Reused::connect(&g);
    let read =
        |r: &str| format!(r#"{{"version":2,"type":"resolve","refs":["{r}"],"purpose":"read"}}"#);
    let first = c.ask(&read("op://Dev/Stripe/key")).expect("an answer");
    assert_eq!(first["type"], "values", "{first}");
    let out = c.ask(&read("op://Prod/Stripe/key")).expect("an answer");
    assert_eq!(out["type"], "error", "{out}");
    let list = c
        .ask(r#"{"version":2,"type":"grants"}"#)
        .expect("an answer");
    assert_eq!(list["type"], "error", "{list}");
    assert_eq!(w.run(&["revoke", "kept"]).code, 0);
    assert!(c.ended(), "the grant's connection outlived the grant");

    // A budget spent on a kept connection ends the grant and the connection with its answer.
    let b = grant(&w, &["kept-budget", "--max-reads", "2"]);
    let mut c = op_session_e2e::Reused::connect(&b);
    for _ in 0..2 {
        let got = c.ask(&read("op://Dev/Stripe/key")).expect("an answer");
        assert_eq!(got["type"], "values", "{got}");
    }
    assert!(c.ended(), "the connection outlived the spent budget");
    assert!(
        wait_until(Duration::from_secs(2), || !b.exists()),
        "a spent grant keeps its socket"
    );
    w.run(&["stop"]);
}

#[test]
fn a_grant_holder_can_give_it_up_and_another_uid_is_refused() {
    let w = world("");
    let g = grant(&w, &["mine"]);
    let out = via(&w, &g, &["lock"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!g.exists());
    assert_eq!(
        w.status()["sessions"].as_array().unwrap().len(),
        1,
        "lock through a grant locked the session"
    );
    // The uid check applies as on the main socket.
    let g = grant(&w, &["uid"]);
    if which("setpriv") {
        use std::os::unix::fs::PermissionsExt;
        // Let uid 65534 reach the socket file so the daemon's own check is what refuses it.
        let mut p = g.parent().unwrap();
        while p != w.dir.path().parent().unwrap() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
            p = p.parent().unwrap();
        }
        std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o666)).unwrap();
        let req = op_session_e2e::raw_request(r#"{"version":2,"type":"status"}"#);
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_raw-frame"))
            .arg(&g)
            .arg(op_session_e2e::hex(&req))
            .finish()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("permission_denied"), "{text}");
        // Private again, so the client talks to the daemon to stop it.
        let mut p = g.parent().unwrap();
        while p != w.dir.path().parent().unwrap() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
            p = p.parent().unwrap();
        }
    }
    assert_eq!(w.run(&["stop"]).code, 0);
}

/// A grant opened at a path of the person's choosing (`--grant-socket`) is opened by the
/// person's daemon (not by one auto-started on that path), and is recognised as a grant's after
/// it ends too: a client pointed at it says "unavailable" and starts no daemon there (which
/// would serve the path the grant's holder was told to use).
#[test]
fn an_ended_grant_elsewhere_gets_no_daemon_auto_started_on_its_path() {
    let w = world("");
    let dir = w.dir.path().join("elsewhere");
    let sock = dir.join("g.sock");
    let g = grant(
        &w,
        &[
            "away",
            "--grant-socket",
            sock.to_str().unwrap(),
            "--ttl",
            "10m",
        ],
    );
    assert_eq!(g, sock);
    assert!(
        dir.join("g.sock.grant").exists(),
        "the marker that outlives the grant"
    );
    assert_eq!(via(&w, &sock, &["read", "op://Dev/Stripe/key"]).code, 0);
    assert_eq!(w.run(&["revoke", "away"]).code, 0);
    assert!(!sock.exists(), "the revoked grant's socket is gone");
    // Auto-start is on for this call (no OPSESSION_NO_AUTOSTART, no --no-autostart).
    let out = via(&w, &sock, &["read", "op://Dev/Stripe/key"]);
    let started = wait_until(Duration::from_secs(2), || sock.exists());
    if started {
        // Stop what was started before failing, so no daemon outlives the test.
        let _ = w
            .client(&["stop"])
            .env("OPSESSION_SOCKET", &sock)
            .env("OPSESSION_NO_AUTOSTART", "1")
            .finish();
    }
    assert!(
        !started,
        "a daemon was auto-started on the ended grant's path"
    );
    assert_eq!(out.code, 69, "unavailable: {}", out.stderr);
    w.run(&["stop"]);
}

#[test]
fn a_grant_elsewhere_never_replaces_a_file_that_carries_its_marker_name() {
    let w = world("");
    let dir = w.dir.path().join("elsewhere");
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sock = dir.join("g.sock");
    let theirs = dir.join("g.sock.grant");
    std::fs::write(&theirs, b"a person's file").unwrap();
    let out = w.run(&["grant", "away", "--grant-socket", sock.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("not a grant's marker"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"a person's file");
    assert!(!sock.exists(), "the refused grant's socket is gone");
    // A link by that name is not followed or replaced either.
    std::fs::remove_file(&theirs).unwrap();
    let target = w.home.join("target");
    std::fs::write(&target, b"kept").unwrap();
    std::os::unix::fs::symlink(&target, &theirs).unwrap();
    let out = w.run(&["grant", "away", "--grant-socket", sock.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(theirs.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"kept");
    w.run(&["stop"]);
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .finish_status()
        .is_ok_and(|s| s.success())
}

/// A private sshd on 127.0.0.1, with its own host key and one authorized user key.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd(dir: &Path) -> Sshd {
    use std::os::unix::fs::PermissionsExt;
    let sshd_bin = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sshd is installed (scripts/test installs openssh-server)");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    for name in ["host_key", "user_key"] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(name))
            .finish_status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nPermitRootLogin prohibit-password\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PidFile {d}/sshd.pid\nAllowStreamLocalForwarding yes\nStreamLocalBindUnlink yes\n\
             StreamLocalBindMask 0177\nLogLevel ERROR\n",
            d = dir.display()
        ),
    )
    .unwrap();
    if nix::unistd::geteuid().is_root() {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let child = Command::new(sshd_bin)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "sshd did not start"
    );
    Sshd {
        child,
        port,
        key: dir.join("user_key"),
    }
}

/// `ssh -R REMOTE:LOCAL` to the private sshd, running `command` on the "remote" side; bounded
/// in time by `timeout`.
fn ssh_with_forward(s: &Sshd, remote: &Path, local: &Path, command: &str) -> Out {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    Command::new("timeout")
        .arg("30")
        .arg("ssh")
        .args(["-p", &s.port.to_string(), "-i"])
        .arg(&s.key)
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "StreamLocalBindUnlink=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "LogLevel=ERROR",
            "-R",
        ])
        .arg(format!("{}:{}", remote.display(), local.display()))
        .arg(format!("{user}@127.0.0.1"))
        .arg(command)
        .stdin(Stdio::null())
        .finish()
        .unwrap()
        .into()
}

#[test]
fn over_ssh_a_remote_machine_reads_in_scope_and_loses_access_on_revoke() {
    let w = world("");
    let s = sshd(&w.dir.path().join("ssh"));
    let g = grant(&w, &["remote", "--vault", "Dev"]);
    // The "remote" side: its own private directory for the forwarded socket.
    let remote_dir = w.dir.path().join("remote");
    std::fs::create_dir_all(&remote_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&remote_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let remote = remote_dir.join("agent.sock");
    let client = bins().client.display().to_string();
    let run = |reference: &str| {
        ssh_with_forward(
            &s,
            &remote,
            &g,
            &format!(
                "OPSESSION_SOCKET={} OPSESSION_NO_AUTOSTART=1 {client} read '{reference}'",
                remote.display()
            ),
        )
    };
    let out = run("op://Dev/Stripe/key");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{STRIPE}\n"));
    let out = run("op://Prod/Stripe/key");
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert_eq!(w.run(&["revoke", "remote"]).code, 0);
    let out = run("op://Dev/Stripe/key");
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    w.run(&["stop"]);
}

/// The sandbox recipes of the README: the sandbox sees only the grant's directory.
fn sandboxed(w: &World, grant_dir: &Path, wrapper: &[&str], args: &[&str]) -> Out {
    let client = bins().client.display().to_string();
    let mut c = Command::new(wrapper[0]);
    c.env_clear()
        .envs(w.env())
        .env("OPSESSION_SOCKET", "/run/grant/agent.sock")
        .env("OPSESSION_NO_AUTOSTART", "1")
        .args(&wrapper[1..]);
    match wrapper[0] {
        "bwrap" => {
            c.args(["--ro-bind", "/", "/", "--tmpfs", "/run", "--tmpfs"])
                .arg(&w.runtime)
                .arg("--bind")
                .arg(grant_dir)
                .args(["/run/grant", "--unshare-pid", "--die-with-parent", "--"])
                .arg(&client)
                .args(args);
        }
        _ => {
            // unshare: a private mount namespace with the runtime directory hidden and only the
            // grant's directory mounted at /run/grant.
            let script = format!(
                "mount -t tmpfs tmpfs /run && mkdir /run/grant && mount --bind {g} /run/grant \
                 && mount -t tmpfs tmpfs {rt} && exec {client} {args}",
                rt = w.runtime.display(),
                g = grant_dir.display(),
                args = args
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            c.args(["sh", "-c", &script]);
        }
    }
    let mut t = Command::new("timeout");
    t.arg("30").arg(c.get_program()).args(c.get_args());
    t.env_clear()
        .envs(c.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    t.stdin(Stdio::null()).finish().unwrap().into()
}

#[test]
fn a_sandbox_that_sees_only_the_grants_directory_reads_within_it() {
    let w = world("");
    let g = grant(&w, &["box", "--vault", "Dev"]);
    let dir = g.parent().unwrap().to_path_buf();
    let mut wrappers: Vec<Vec<&str>> = Vec::new();
    assert!(
        which("bwrap"),
        "bubblewrap is installed (scripts/test installs it)"
    );
    wrappers.push(vec!["bwrap"]);
    if nix::unistd::geteuid().is_root() {
        wrappers.push(vec!["unshare", "--mount", "--fork"]);
    }
    for wrapper in &wrappers {
        let out = sandboxed(&w, &dir, wrapper, &["read", "op://Dev/Stripe/key"]);
        assert_eq!(out.code, 0, "{wrapper:?}: {}", out.stderr);
        assert_eq!(out.stdout, format!("{STRIPE}\n"));
        let out = sandboxed(&w, &dir, wrapper, &["read", "op://Prod/Stripe/key"]);
        assert_eq!(out.code, 78, "{wrapper:?}: {}", out.stderr);
        // The main socket is out of sight.
        let main = w.socket.display().to_string();
        let out = sandboxed(
            &w,
            &dir,
            wrapper,
            &["--socket", &main, "--no-autostart", "status"],
        );
        assert_eq!(
            out.code, 69,
            "{wrapper:?} reached the main socket: {}",
            out.stdout
        );
    }
    w.run(&["stop"]);
}
