//! Who is asking for a confirmation: the peer's executable and its agent process.
//!
//! The agent is the first ancestor of the peer that is not a shell or a wrapper, so an agent's
//! tool calls (a new shell and a new client each time) are one caller and another agent is
//! another (docs/confirm.md, "Who asks"). Reads `/proc` once per request, and only when
//! something may ask.

use crate::peer::ProcessInfo;

/// Who is asking: the peer's executable and its agent process, the first ancestor that is
/// not a shell or a wrapper (`claude`, not the `bash` it starts per tool call). Approvals and
/// shared prompts are per caller; where the chain is unknown, each process is its own caller.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub(super) key: CallerKey,
    /// The peer's executable.
    pub(super) exe: String,
    /// `exe (pid)` of the agent process.
    pub(super) agent: Option<String>,
    /// `agent (pid) > … > peer (pid)`, for the prompt.
    pub(super) chain: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(super) struct CallerKey {
    exe: String,
    /// The agent's pid and start time (a reused pid is another caller).
    agent: Option<(i32, u64)>,
    /// The peer's pid, when no agent is known.
    pid: Option<i32>,
}

/// Executables that run on an agent's behalf for one call and are not the agent itself.
const PASS_THROUGH: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "mksh",
    "tcsh",
    "csh",
    "busybox",
    "env",
    "timeout",
    "nohup",
    "nice",
    "stdbuf",
    "xargs",
    "time",
    "op",
    "op-session",
];

fn base(exe: &str) -> &str {
    exe.rsplit('/').next().unwrap_or(exe)
}

/// Text a person reads: no control characters, whatever a process is named.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Caller {
    /// From the peer's pid and its chain (peer first, as [`crate::peer::identify`] reads it).
    pub fn new(pid: Option<i32>, chain: &[ProcessInfo]) -> Caller {
        let Some(peer) = chain.first() else {
            return Caller {
                key: CallerKey {
                    pid,
                    ..CallerKey::default()
                },
                exe: String::new(),
                agent: None,
                chain: pid.map(|p| format!("process {p}")).unwrap_or_default(),
            };
        };
        let agent_at = chain
            .iter()
            .skip(1)
            .position(|p| !PASS_THROUGH.contains(&base(&p.exe)))
            .map(|i| i + 1)
            .or_else(|| (chain.len() > 1).then_some(chain.len() - 1));
        let agent = agent_at.and_then(|i| chain.get(i));
        let shown = chain[..=agent_at.unwrap_or(0)]
            .iter()
            .rev()
            .map(|p| format!("{} ({})", clean(base(&p.exe)), p.pid))
            .collect::<Vec<_>>()
            .join(" > ");
        let agent_key = agent.and_then(|a| Some((a.pid, crate::peer::start_time(a.pid)?)));
        Caller {
            key: CallerKey {
                exe: peer.exe.clone(),
                pid: agent_key.is_none().then_some(peer.pid),
                agent: agent_key,
            },
            exe: peer.exe.clone(),
            agent: agent.map(|a| format!("{} ({})", a.exe, a.pid)),
            chain: shown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, exe: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            exe: exe.into(),
        }
    }

    #[test]
    fn the_caller_is_the_peer_under_its_first_ancestor_that_is_not_a_shell() {
        // Real pids for the agents, so their start times can be read.
        let me = std::process::id() as i32;
        let parent = nix::unistd::getppid().as_raw();
        let chain = [
            p(4301, "/usr/bin/op-session"),
            p(4300, "/usr/bin/bash"),
            p(me, "/opt/claude/bin/claude"),
            p(100, "/usr/bin/zsh"),
        ];
        let c = Caller::new(Some(4301), &chain);
        assert_eq!(
            c.chain,
            format!("claude ({me}) > bash (4300) > op-session (4301)"),
            "the prompt's words"
        );
        assert_eq!(c.agent, Some(format!("/opt/claude/bin/claude ({me})")));
        // Another tool call of the same agent (new shell, new client) is the same caller.
        let again = [
            p(5001, "/usr/bin/op-session"),
            p(5000, "/usr/bin/bash"),
            p(me, "/opt/claude/bin/claude"),
        ];
        if std::path::Path::new("/proc/self/stat").exists() {
            assert_eq!(Caller::new(Some(5001), &again).key, c.key);
        }
        // Another agent is another caller.
        let other = [
            p(6001, "/usr/bin/op-session"),
            p(parent, "/usr/bin/python3"),
        ];
        assert_ne!(Caller::new(Some(6001), &other).key, c.key);
    }

    #[test]
    fn an_unknown_chain_makes_each_process_its_own_caller() {
        let a = Caller::new(Some(10), &[]);
        let b = Caller::new(Some(11), &[]);
        assert_ne!(a.key, b.key);
    }
}
