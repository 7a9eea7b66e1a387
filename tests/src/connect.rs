//! A world with a fake-connect server: a 1Password Connect stand-in in this test process, on
//! 127.0.0.1 over TLS with a CA made per test, holding the same fixture as fake-op. Shared by
//! the connect-mode tests and the MCP tests that run in connect mode.

use fake_connect::{FakeConnect, Pki};

use crate::{Out, World, fixture};

/// A token shaped like Connect's (a JWT), fresh per test.
pub fn connect_token() -> String {
    let mut b = [0u8; 24];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("eyJhbGciOiJFUzI1NiIsImtpZCI6ImZha2UifQ.eyJ0b2tlbiI6{hex}.c2lnbmF0dXJl")
}

/// A world, its Connect server and the server's token.
pub struct Connect {
    /// The op-session world.
    pub w: World,
    /// The server.
    pub server: FakeConnect,
    /// Its token.
    pub token: String,
}

/// A world whose config trusts a fresh test CA (unless `trust_ca` is false), and a
/// fake-connect server holding the basic fixture.
pub fn connect_world(extra_config: &str, trust_ca: bool) -> Connect {
    let w = World::new(extra_config);
    w.load_basic(); // fake-op stays `op` for passthrough; it knows nothing of Connect
    let pki = Pki::generate().unwrap();
    if trust_ca {
        let ca = w.dir.path().join("connect-ca.pem");
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        let config = std::fs::read_to_string(&w.config).unwrap();
        std::fs::write(
            &w.config,
            format!("connect_ca_file = \"{}\"\n{config}", ca.display()),
        )
        .unwrap();
    }
    let state =
        fake_op::fixture::load(&std::fs::read_to_string(fixture("basic.json")).unwrap()).unwrap();
    let token = connect_token();
    let server = FakeConnect::start(state, &token, &pki).unwrap();
    Connect { w, server, token }
}

impl Connect {
    /// `op-session init --mode connect` with the token on stdin.
    pub fn init(&self) -> Out {
        self.w.run_with_stdin(
            &["init", "--mode", "connect", "--host", &self.server.url()],
            self.token.as_bytes(),
        )
    }

    /// A world with a connect session started.
    pub fn started(extra_config: &str) -> Connect {
        let c = connect_world(extra_config, true);
        let out = c.init();
        assert_eq!(out.code, 0, "init: {}", out.stderr);
        c
    }
}
