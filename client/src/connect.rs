//! `op-session init --mode connect --host URL`: hand a Connect server's token to the daemon.
//!
//! The token is read from `--token-file` or stdin, never from the command line or the
//! environment, and the client's copy is wiped once sent. With neither (stdin is a terminal),
//! the daemon falls back to systemd's `$CREDENTIALS_DIRECTORY/op-connect-token`, which only
//! it can see. The daemon checks the server and the token before it keeps them.

use std::io::IsTerminal;

use op_session_protocol::{InitRequest, Mode};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::cli::{InitArgs, ModeArg};
use crate::conn::Target;
use crate::error::{Failure, Result};
use crate::init::{read_secret_stdin, send_init};

/// `init --mode connect`.
pub fn init(t: &Target, account: Option<String>, args: &InitArgs) -> Result<i32> {
    if args.mode.is_some_and(|m| m != ModeArg::Connect) {
        return Err(Failure::usage(
            "--host is only for connect mode",
            "use `op-session init --mode connect --host https://…`",
        ));
    }
    let Some(host) = args.host.clone() else {
        return Err(Failure::usage(
            "connect mode needs the Connect server's address",
            "op-session init --mode connect --host https://connect.example.com < token-file",
        ));
    };
    let token: Option<Zeroizing<String>> = match &args.token_file {
        Some(f) => Some(crate::init::read_token_file(f)?),
        // No file and a terminal on stdin: the daemon may hold a systemd credential.
        None if std::io::stdin().is_terminal() => None,
        None => Some(read_secret_stdin("Connect token")?),
    };
    send_init(
        t,
        InitRequest {
            account,
            mode: Some(Mode::Connect),
            session_var: None,
            token: token.map(|t| SecretString::from(t.as_str())),
            host: Some(host),
        },
    )
}
