//! `[confirm]` on a real desktop's channels: the notification service on a private session
//! bus (a stand-in that owns `org.freedesktop.Notifications`, and a second connection that
//! forges its answers), and Debian's real `ssh-askpass` under Xvfb, answered with `xdotool`.
//!
//! Every wait has a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use op_session_e2e::dbus::{Bus, Emitter, FakeNotifications, NOTIFICATIONS_PATH, Shown};
use op_session_e2e::{Out, World, wait_until};

const MY_PASSWORD: &[u8] = b"correct horse battery staple\n";
const PROD_KEY: &str = "sk_live_51ProdOnlyKeyDoNotLeak9";
const PROD_REF: &str = "op://Prod/Stripe/key";

fn signed_in(w: &World) {
    w.load_basic();
    let out = w.run_with_stdin(
        &["init", "--account", "my", "--password-stdin"],
        MY_PASSWORD,
    );
    assert_eq!(out.code, 0, "init: {}", out.stderr);
}

/// The key of the action labelled `label`.
fn action(n: &Shown, label: &str) -> String {
    let i = n
        .actions
        .iter()
        .position(|a| a == label)
        .unwrap_or_else(|| panic!("no action {label:?} in {:?}", n.actions));
    assert!(i % 2 == 1, "{:?}", n.actions);
    n.actions[i - 1].clone()
}

fn spawn_read(w: &World, reference: &str) -> Child {
    w.client(&["read", reference])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn notifications_answer_only_from_the_service_for_our_id_and_forgeries_are_ignored() {
    let mut w =
        World::new("[confirm]\nrefs = [\"op://Prod/*\"]\ntimeout = \"30s\"\nremember = \"5m\"\n");
    let bus = Bus::start(w.dir.path(), "session");
    let service = FakeNotifications::start(&bus.address);
    w.extra_env
        .push(("DBUS_SESSION_BUS_ADDRESS".into(), bus.address.clone()));
    signed_in(&w);
    assert_eq!(w.status()["confirm"]["channel"], "notification");

    let mut kid = spawn_read(&w, PROD_REF);
    assert!(
        wait_until(Duration::from_secs(10), || service.shown().len() == 1),
        "a notification is shown"
    );
    let n = service.shown()[0].clone();
    assert!(n.body.contains(&format!("wants {PROD_REF}")), "{n:?}");
    assert!(n.body.contains("op-session ("), "{n:?}");
    let once = action(&n, "Allow once");
    let remember = action(&n, "Allow for 5m");
    let _deny = action(&n, "Deny");

    // Another connection on the bus forges the answer: ignored.
    let forger = Emitter::connect(&bus.address);
    for key in [&once, &remember] {
        forger.emit(
            NOTIFICATIONS_PATH,
            "org.freedesktop.Notifications",
            "ActionInvoked",
            &(n.id, key.as_str()),
        );
    }
    // The service itself, for another notification's id: ignored.
    service.invoke(n.id + 7, &once);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        kid.try_wait().unwrap().is_none(),
        "a forged or foreign answer approved the read"
    );

    // The person clicks "Allow for …".
    service.invoke(n.id, &remember);
    let out = Out::from(kid.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{PROD_KEY}\n"));
    assert!(
        wait_until(Duration::from_secs(5), || service.closed().contains(&n.id)),
        "the notification is taken down"
    );
    // Remembered: no second notification.
    assert_eq!(w.run(&["read", PROD_REF]).code, 0);
    assert_eq!(service.shown().len(), 1);

    // "Deny" on another reference.
    let kid = spawn_read(&w, "op://Prod/Database/password");
    assert!(wait_until(Duration::from_secs(10), || service
        .shown()
        .len()
        == 2));
    let n = service.shown()[1].clone();
    service.invoke(n.id, &action(&n, "Deny"));
    let out = Out::from(kid.wait_with_output().unwrap());
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("denied by the person"),
        "{}",
        out.stderr
    );
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Xvfb on a free display number, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvfb {
    fn start() -> Xvfb {
        // -displayfd tells us the display it took, so parallel tests never collide.
        // -noreset: an X server resets when its last client disconnects, and every `xdotool
        // search` below is a client that connects and disconnects. A reset recompiles the
        // keymap (a fork of xkbcomp) and drops every connection not yet set up: ssh-askpass,
        // connecting in that window, saw the server hang up, printed "Can't open display" and
        // exited 1 at once (a "no"), so no dialog ever came (about one run in 10 to 30 on the
        // 2-CPU test machine).
        let (r, wr) = nix::unistd::pipe().unwrap();
        let child = Command::new("Xvfb")
            .args([
                "-displayfd",
                &std::os::fd::AsRawFd::as_raw_fd(&wr).to_string(),
            ])
            .args(["-noreset", "-screen", "0", "800x600x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (Debian package xvfb; scripts/test installs it)");
        drop(wr);
        let mut f = std::fs::File::from(r);
        let mut s = String::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        use std::io::Read;
        let mut buf = [0u8; 16];
        while !s.contains('\n') && std::time::Instant::now() < deadline {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => s.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        let n = s.trim();
        assert!(!n.is_empty(), "Xvfb did not report a display");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }

    fn xdotool(&self, args: &[&str]) -> Out {
        Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap()
            .into()
    }

    /// The askpass window, once it is mapped.
    fn window(&self) -> Option<String> {
        // x11-ssh-askpass titles its window "OpenSSH Authentication Passphrase Request".
        let out = self.xdotool(&["search", "--onlyvisible", "--name", "OpenSSH"]);
        out.stdout.lines().next().map(str::to_string)
    }

    /// Wait for the askpass window of the read `kid` and press `key` in it, retrying until the
    /// window goes. A key sent before ssh-askpass grabbed the keyboard is lost, so it is sent
    /// again. The dialog maps within a fraction of a second; the deadline leaves a wide margin
    /// for a loaded machine. A read that ends before any dialog appeared (ssh-askpass could not
    /// show one, so the daemon heard "no") fails at once, with the read's output.
    fn answer(&self, kid: &mut Child, key: &str) {
        let mut seen = false;
        let mut ended = None;
        let ok = wait_until(Duration::from_secs(60), || match self.window() {
            Some(win) => {
                seen = true;
                // No window manager: focus it ourselves; ssh-askpass also grabs the keyboard,
                // and keys go to it through XTEST either way.
                self.xdotool(&["windowfocus", &win]);
                self.xdotool(&["key", key]);
                std::thread::sleep(Duration::from_millis(300));
                false
            }
            None if !seen => {
                ended = kid.try_wait().unwrap();
                ended.is_some()
            }
            None => true,
        });
        assert!(
            ok,
            "the ssh-askpass window {}",
            if seen {
                "never went away"
            } else {
                "never appeared"
            }
        );
        if let Some(status) = ended {
            let mut err = String::new();
            use std::io::Read;
            let _ = kid.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the read ended ({status}) before any ssh-askpass window appeared: {err}");
        }
    }
}

#[test]
fn real_ssh_askpass_under_xvfb_answered_with_xdotool() {
    const ASKPASS: &str = "/usr/bin/ssh-askpass";
    if !(have("Xvfb") && have("xdotool") && std::path::Path::new(ASKPASS).exists()) {
        panic!(
            "this test needs Xvfb, xdotool and ssh-askpass (Debian packages xvfb, xdotool, ssh-askpass; scripts/test installs them)"
        );
    }
    let x = Xvfb::start();
    let mut w = World::new(&format!(
        "[confirm]\nrefs = [\"op://Prod/*\"]\ntimeout = \"120s\"\naskpass = \"{ASKPASS}\"\n"
    ));
    w.extra_env.push(("DISPLAY".into(), x.display.clone()));
    signed_in(&w);

    // Return on the dialog: OK, exit 0.
    let mut kid = spawn_read(&w, PROD_REF);
    x.answer(&mut kid, "Return");
    let out = Out::from(kid.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{PROD_KEY}\n"));

    // Escape: cancel, a no.
    let mut kid = spawn_read(&w, PROD_REF);
    x.answer(&mut kid, "Escape");
    let out = Out::from(kid.wait_with_output().unwrap());
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("denied by the person"),
        "{}",
        out.stderr
    );
}
