//! Issue 15: `op-session agent install|uninstall` for Claude Code, Codex and Cursor, in a
//! temporary HOME and project: the exact files written (golden files in tests/golden/agents,
//! with the binary's path as `{{op-session}}`; `UPDATE_GOLDEN=1` rewrites them), installing
//! twice changes nothing, `--dry-run` writes nothing, and uninstall leaves nothing behind and
//! the person's own content as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use op_session_e2e::{Out, World, bins};

const AGENTS: [&str; 3] = ["claude-code", "codex", "cursor"];

/// Every file under `dir`, by relative path, with the client's path made generic.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                let text = std::fs::read_to_string(&path).unwrap();
                let generic = text.replace(&bins().client.display().to_string(), "{{op-session}}");
                out.insert(rel, generic);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn golden_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden/agents")
        .join(name)
}

/// Compare `got` with the golden tree `name` (or rewrite it under UPDATE_GOLDEN=1).
fn assert_golden(name: &str, got: &BTreeMap<String, String>) {
    let dir = golden_dir(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        for (rel, text) in got {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
    let want = tree(&dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "files written for {name}"
    );
    for (rel, text) in got {
        assert_eq!(
            text, &want[rel],
            "{name}: {rel} differs from its golden file"
        );
    }
}

fn agent(w: &World, args: &[&str]) -> Out {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    let out = w.run(&all);
    assert_eq!(out.code, 0, "agent {args:?}: {}", out.stderr);
    out
}

#[test]
fn each_agent_gets_exactly_its_golden_files_once_and_uninstall_takes_them_all_out() {
    let w = World::new("");
    let project = w.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project_arg = project.to_str().unwrap();
    for name in AGENTS {
        for (scope, dir, extra) in [
            ("user", w.home.clone(), vec![]),
            ("project", project.clone(), vec!["--project", project_arg]),
        ] {
            let label = format!("{name}-{scope}");
            assert!(tree(&dir).is_empty(), "{label}: not empty before");
            let mut args = vec!["install", name];
            args.extend(&extra);
            // --dry-run writes nothing but names every file.
            let mut dry = args.clone();
            dry.push("--dry-run");
            let out = agent(&w, &dry);
            assert!(out.stdout.contains("would write"), "{}", out.stdout);
            assert!(tree(&dir).is_empty(), "{label}: --dry-run wrote a file");

            let out = agent(&w, &args);
            assert!(out.stdout.contains("wrote"), "{}", out.stdout);
            let written = tree(&dir);
            assert_golden(&label, &written);
            for text in written.values() {
                assert!(
                    !text.contains("OP_SESSION_") && !text.contains("ops_"),
                    "{label}: a token-shaped string in an agent file"
                );
            }
            // Again: no change, and it says so.
            let out = agent(&w, &args);
            assert!(out.stdout.contains("already set up"), "{}", out.stdout);
            assert_eq!(
                tree(&dir),
                written,
                "{label}: a second install changed files"
            );

            let mut un = vec!["uninstall", name];
            un.extend(&extra);
            let mut dry = un.clone();
            dry.push("--dry-run");
            assert!(agent(&w, &dry).stdout.contains("would remove"));
            assert_eq!(tree(&dir), written, "{label}: --dry-run removed a file");
            agent(&w, &un);
            assert!(tree(&dir).is_empty(), "{label}: left {:?}", tree(&dir));
            assert_eq!(
                std::fs::read_dir(&dir).unwrap().count(),
                0,
                "{label}: left a directory"
            );
            assert!(agent(&w, &un).stdout.contains("nothing of op-session's"));
        }
    }
}

#[test]
fn the_persons_own_config_survives_install_and_uninstall() {
    let w = World::new("");
    let h = &w.home;
    std::fs::create_dir_all(h.join(".codex")).unwrap();
    std::fs::create_dir_all(h.join(".cursor")).unwrap();
    std::fs::create_dir_all(h.join(".claude/skills/other")).unwrap();
    let files: Vec<(PathBuf, &str)> = vec![
        (
            h.join(".claude.json"),
            "{\"numStartups\": 3, \"mcpServers\": {\"github\": {\"command\": \"gh-mcp\", \"args\": []}}, \"projects\": {}}\n",
        ),
        (
            h.join(".codex/config.toml"),
            "# my settings\nmodel = \"o4\"  # keep\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\nargs = [\"--stdio\"]\n",
        ),
        (
            h.join(".codex/AGENTS.md"),
            "# House rules\n\nAlways run the tests.\n",
        ),
        (
            h.join(".cursor/mcp.json"),
            "{\n  \"mcpServers\": {\n    \"db\": {\"command\": \"db-mcp\"}\n  }\n}\n",
        ),
        (
            h.join(".claude/skills/other/SKILL.md"),
            "---\nname: other\n---\nmine\n",
        ),
    ];
    for (path, text) in &files {
        std::fs::write(path, text).unwrap();
    }
    let before = tree(h);
    for name in AGENTS {
        agent(&w, &["install", name]);
    }
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let claude = json(&h.join(".claude.json"));
    assert_eq!(claude["numStartups"], 3);
    assert_eq!(claude["mcpServers"]["github"]["command"], "gh-mcp");
    assert_eq!(claude["mcpServers"]["op-session"]["args"][0], "mcp");
    let codex = std::fs::read_to_string(h.join(".codex/config.toml")).unwrap();
    assert!(
        codex.starts_with("# my settings\nmodel = \"o4\"  # keep\n\n[mcp_servers.docs]"),
        "{codex}"
    );
    assert!(codex.contains("[mcp_servers.op-session]"), "{codex}");
    assert!(
        std::fs::read_to_string(h.join(".codex/AGENTS.md"))
            .unwrap()
            .starts_with("# House rules\n\nAlways run the tests.\n\n<!-- BEGIN op-session")
    );
    assert_eq!(
        json(&h.join(".cursor/mcp.json"))["mcpServers"]["db"]["command"],
        "db-mcp"
    );

    for name in AGENTS {
        agent(&w, &["uninstall", name]);
    }
    let after = tree(h);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    // Every file, JSON included, comes back byte for byte: key order, spacing, indentation.
    for (rel, text) in &before {
        assert_eq!(text, &after[rel], "{rel} changed");
    }
}

/// JSON configs are edited, not re-serialised: install adds our entry in the file's own
/// indentation and leaves every other byte; uninstall gives the file back as it was. A key the
/// person added to our Codex table (or JSON entry) survives uninstall.
#[test]
fn json_keeps_its_order_and_indentation_and_uninstall_removes_only_what_install_wrote() {
    let w = World::new("");
    let project = w.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let mcp = project.join(".mcp.json");
    let original = "{\n    \"zebra\": true,\n    \"mcpServers\": {\n        \"db\": { \"command\": \"db-mcp\" }\n    },\n    \"alpha\": [1,2]\n}\n";
    std::fs::write(&mcp, original).unwrap();
    let dir = project.to_str().unwrap();
    agent(&w, &["install", "claude-code", "--project", dir]);
    let installed = std::fs::read_to_string(&mcp).unwrap();
    assert!(
        installed.starts_with(
            "{\n    \"zebra\": true,\n    \"mcpServers\": {\n        \"db\": { \"command\": \"db-mcp\" },\n        \"op-session\": {\n            \"args\": ["
        ),
        "{installed}"
    );
    assert!(
        installed.ends_with("    },\n    \"alpha\": [1,2]\n}\n"),
        "{installed}"
    );
    agent(&w, &["uninstall", "claude-code", "--project", dir]);
    assert_eq!(std::fs::read_to_string(&mcp).unwrap(), original);

    // Codex: a key the person added to our table stays; only command/args/env_vars go.
    agent(&w, &["install", "codex", "--project", dir]);
    let toml = project.join(".codex/config.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}startup_timeout_sec = 30\n")).unwrap();
    agent(&w, &["uninstall", "codex", "--project", dir]);
    let left = std::fs::read_to_string(&toml).unwrap();
    assert!(left.contains("[mcp_servers.op-session]"), "{left}");
    assert!(left.contains("startup_timeout_sec = 30"), "{left}");
    assert!(
        !left.contains("command") && !left.contains("env_vars"),
        "{left}"
    );
}

#[test]
fn an_entry_of_the_same_name_that_is_not_ours_stops_install() {
    let w = World::new("");
    let theirs = "{\"mcpServers\": {\"op-session\": {\"command\": \"npx\", \"args\": [\"op-session-mcp\"]}}}\n";
    std::fs::create_dir_all(w.home.join(".cursor")).unwrap();
    std::fs::write(w.home.join(".cursor/mcp.json"), theirs).unwrap();
    let out = w.run(&["agent", "install", "cursor"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("did not write"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(w.home.join(".cursor/mcp.json")).unwrap(),
        theirs
    );
    agent(&w, &["uninstall", "cursor"]);
    assert_eq!(
        std::fs::read_to_string(w.home.join(".cursor/mcp.json")).unwrap(),
        theirs
    );
}

/// The written entry starts `op-session mcp`, and an MCP client can list its tools. Until the
/// `mcp` subcommand exists in this build, only the entry is checked.
#[test]
fn the_written_mcp_entry_starts_op_session_mcp() {
    let w = World::new("");
    agent(&w, &["install", "cursor"]);
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.home.join(".cursor/mcp.json")).unwrap())
            .unwrap();
    let entry = &entry["mcpServers"]["op-session"];
    let command = PathBuf::from(entry["command"].as_str().unwrap());
    assert!(command.is_absolute());
    assert_eq!(command, bins().client);
    assert_eq!(entry["args"], serde_json::json!(["mcp"]));

    assert_eq!(w.run(&["mcp", "--help"]).code, 0, "op-session mcp runs");
    let mut child = w
        .client(&["mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for msg in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"agents-test","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ] {
        writeln!(stdin, "{msg}").unwrap();
    }
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["id"] == 2 {
                let _ = tx.send(v);
                return;
            }
        }
    });
    let reply = rx.recv_timeout(Duration::from_secs(20));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let reply = reply.expect("op-session mcp answered tools/list");
    assert!(
        reply["result"]["tools"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{reply}"
    );
}

/// An MCP client that starts `op-session` with only HOME, PATH, USER, SHELL, TERM and LOGNAME
/// (Codex, the Python SDK's stdio_client, Inspector, fastmcp) reaches the daemon in the
/// person's runtime directory, `/run/user/<uid>`, not a second one under /tmp. Run as a spare
/// uid so the machine's own `/run/user` entries are never touched.
#[test]
fn a_client_with_a_trimmed_environment_finds_the_socket_in_run_user() {
    use op_session_e2e::Finish as _;
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        op_session_e2e::skipped("a trimmed-environment client in /run/user/<uid> needs root");
        return;
    }
    let uid = 61000 + std::process::id() % 4000;
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    assert!(!run_user.exists(), "{} is in use", run_user.display());
    struct Cleanup(PathBuf, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            // The daemon (uid-owned, auto-started) goes with the directory.
            if let Ok(pid) = std::fs::read_to_string(self.0.join("op-session/agent.sock.lock"))
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let home = std::env::temp_dir().join(format!("trimmed-home-{uid}"));
    let _cleanup = Cleanup(run_user.clone(), home.clone());
    let fake_home = home.join("fakeop");
    let config = home.join(".config/op-session/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::create_dir_all(&fake_home).unwrap();
    std::fs::write(
        &config,
        format!(
            "op_path = \"{}\"\nop_env = {{ FAKE_OP_HOME = \"{}\" }}\n",
            bins().fake_op.display(),
            fake_home.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(&run_user).unwrap();
    std::fs::set_permissions(&run_user, std::fs::Permissions::from_mode(0o700)).unwrap();
    let owner = Some(nix::unistd::Uid::from_raw(uid));
    let group = Some(nix::unistd::Gid::from_raw(uid));
    for p in [
        &run_user,
        &home,
        &home.join(".config"),
        &config.parent().unwrap().to_path_buf(),
        &config,
        &fake_home,
    ] {
        nix::unistd::chown(p.as_path(), owner, group).unwrap();
    }
    let trimmed = |args: &[&str]| -> Out {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ])
        .arg(&bins().client)
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("USER", "trimmed")
        .env("LOGNAME", "trimmed")
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .current_dir(&home)
        .stdin(Stdio::null());
        op_session_e2e::detach_from_terminal(&mut c);
        c.finish().unwrap().into()
    };
    // The daemon is started explicitly (auto-start reads the config at the passwd home, and
    // this spare uid has no passwd entry), with the same trimmed environment: it finds
    // /run/user/<uid> by itself too, as a service unit without XDG_RUNTIME_DIR would.
    let mut d = std::process::Command::new("setpriv");
    d.args([
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
    ])
    .arg(&bins().daemon)
    .arg("--config")
    .arg(&config)
    .env_clear()
    .env("HOME", &home)
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .env("USER", "trimmed")
    .env("LOGNAME", "trimmed")
    .current_dir("/")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    // The detaching daemon's first process exits once the server is ready (or failed).
    let started = d.finish_status().unwrap();
    assert!(started.success(), "op-sessiond started: {started:?}");
    let out = trimmed(&["status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let expected = run_user.join("op-session/agent.sock");
    assert_eq!(v["socket"], expected.display().to_string(), "{v:#}");
    assert!(!Path::new(&format!("/tmp/op-session-{uid}")).exists());
    // The MCP server's entry point finds it too: `op-session mcp` reaches the daemon first.
    let out = trimmed(&["stop"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// After a project install the hint names `--project DIR` (a bare uninstall would take out the
/// user-wide install instead), and a Codex project install says Codex needs the project trusted.
#[test]
fn project_install_hints_name_the_project_and_codex_trust() {
    let w = World::new("");
    let project = w.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let dir = project.to_str().unwrap();
    for name in AGENTS {
        let out = agent(&w, &["install", name, "--project", dir]);
        assert!(
            out.stdout.contains(&format!(
                "op-session agent uninstall {name} --project {dir}"
            )),
            "{name}: {}",
            out.stdout
        );
        assert_eq!(
            out.stdout.contains("trusted"),
            name == "codex",
            "{name}: {}",
            out.stdout
        );
    }
    let out = agent(&w, &["install", "codex"]);
    assert!(
        out.stdout
            .contains("`op-session agent uninstall codex` takes"),
        "{}",
        out.stdout
    );
}
