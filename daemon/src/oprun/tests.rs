//! Unit tests of [`super`].

use super::*;

fn runner(path: &str, timeout: Duration) -> OpRunner {
    OpRunner::new(Some(PathBuf::from(path)), timeout, vec![], vec![])
}

#[tokio::test]
async fn captures_output_and_exit_code() {
    let r = runner("/bin/sh", Duration::from_secs(5));
    let out = r
        .run(
            &["-c".into(), "echo out; echo err >&2; exit 3".into()],
            Auth::None,
            None,
        )
        .await
        .expect("runs");
    assert_eq!(out.code, 3);
    assert_eq!(&out.stdout[..], b"out\n");
    assert_eq!(out.stderr, "err\n");
}

#[tokio::test]
async fn token_reaches_only_the_environment() {
    let r = runner("/bin/sh", Duration::from_secs(5));
    let out = r
        .run(
            &[
                "-c".into(),
                "printf %s \"$OP_SESSION_ABC\"; cat /proc/self/cmdline".into(),
            ],
            Auth::Token {
                var: "OP_SESSION_ABC",
                token: "s3cr3t-token",
            },
            None,
        )
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("s3cr3t-token"), "{text}");
    assert_eq!(
        text.matches("s3cr3t-token").count(),
        1,
        "token on argv: {text}"
    );
}

#[tokio::test]
async fn a_hanging_op_is_killed_at_the_deadline() {
    let r = runner("/bin/sh", Duration::from_millis(300));
    let err = r
        .run(&["-c".into(), "sleep 30 & wait".into()], Auth::None, None)
        .await
        .expect_err("times out");
    assert!(matches!(err, OpError::Timeout(_)), "{err}");
}

#[tokio::test]
async fn a_missing_op_is_one_clear_error() {
    let r = runner("/nonexistent/op", Duration::from_secs(1));
    let err = r.run(&[], Auth::None, None).await.expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/op"), "{err}");
}

#[tokio::test]
async fn stdin_is_fed() {
    let r = runner("/bin/cat", Duration::from_secs(5));
    let out = r
        .run(&[], Auth::None, Some(b"template"))
        .await
        .expect("runs");
    assert_eq!(&out.stdout[..], b"template");
}
