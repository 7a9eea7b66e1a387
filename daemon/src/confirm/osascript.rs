//! The macOS channel: a dialog shown with `osascript`.
//!
//! Untested: no Mac was at hand when it was written (docs/confirm.md says so). The prompt
//! reaches AppleScript as an argument (`on run argv`), never spliced into the script, so no
//! caller-chosen text becomes code. "Allow" exits 0; "Deny", closing or the dialog's own
//! timeout exit non-zero.

use std::time::Duration;

use tokio::process::Command;

use super::Answer;

/// Where macOS keeps it.
pub(crate) const OSASCRIPT: &str = "/usr/bin/osascript";

const SCRIPT: &str = r#"on run argv
display dialog (item 1 of argv) with title "op-session" buttons {"Deny", "Allow"} default button "Deny" cancel button "Deny" with icon caution giving up after (item 2 of argv as integer)
if gave up of result then error number -128
end run"#;

/// Whether this system has the channel at all.
pub(crate) fn available() -> bool {
    cfg!(target_os = "macos") && std::path::Path::new(OSASCRIPT).is_file()
}

/// Show the dialog and wait; dropping the future kills `osascript`.
pub(crate) async fn ask(prompt: &str, timeout: Duration) -> Result<Answer, String> {
    let status = Command::new(OSASCRIPT)
        .args(["-e", SCRIPT, prompt, &timeout.as_secs().max(1).to_string()])
        .env_clear()
        .env("PATH", op_session_paths::SYSTEM_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| format!("cannot run {OSASCRIPT}: {e}"))?;
    Ok(if status.success() {
        Answer::Allow { remember: true }
    } else {
        Answer::Deny
    })
}
