#!/usr/bin/env bash
# The official MCP conformance suite against `op-session mcp --http`, in a private world:
# fake-op as `op` with the basic fixture and a signed-in session, a loopback port, a 0600
# token file. The conformance CLI cannot send a bearer token, so a loopback proxy
# (.ci/mcp-bearer-proxy.js) adds it; the server itself still refuses requests without one.
#
# Scenarios that need fixture tools we do not ship are listed, each with its reason, in
# .ci/mcp-conformance-expected-failures.yml; every other scenario must pass (the CLI fails on
# a new failure and on a stale entry alike).
#
# The conformance CLI needs Node >= 22; Debian's nodejs may be older, so `node@22` comes from
# the npm registry through npx when the system one is too old.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

cargo build -q -p op-session -p op-sessiond -p op-session-mcp -p fake-op --bins
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

world=$(mktemp -d /tmp/ops-conformance.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  HOME="$world/home" XDG_RUNTIME_DIR="$world/run" "$bin/op-session" stop >/dev/null 2>&1 || true
  [ -n "${KEEP_WORLD:-}" ] || rm -rf "$world"
}
trap cleanup EXIT
mkdir -p "$world"/{home,run,state,config/op-session,fakeop}
chmod 700 "$world/run"
export HOME="$world/home" XDG_RUNTIME_DIR="$world/run" XDG_STATE_HOME="$world/state" \
  XDG_CONFIG_HOME="$world/config" FAKE_OP_HOME="$world/fakeop"
# fake-op's state reaches op children through op_env: the daemon gives them a clean
# environment, so FAKE_OP_HOME would not pass from here.
config="$world/config/op-session/config.toml"
printf 'op_path = "%s"\nop_env = { FAKE_OP_HOME = "%s" }\n' "$bin/fake-op" "$world/fakeop" >"$config"
"$bin/fake-op-ctl" load crates/fake-op/fixtures/basic.json
# The daemon is started here with this world's config: auto-start takes no config from the
# caller's environment (it reads the one under the passwd home). It detaches once it serves.
"$bin/op-sessiond" --socket "$world/run/op-session/agent.sock" --config "$config" </dev/null >/dev/null 2>&1
echo "correct horse battery staple" | setsid "$bin/op-session" init --account my --password-stdin >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
proxy_port=$(free_port)
"$bin/op-session" mcp --http "127.0.0.1:$port" 2>"$world/mcp.log" &
pids+=($!)
for _ in $(seq 100); do grep -q serving "$world/mcp.log" 2>/dev/null && break; sleep 0.05; done

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -ge 22 ]; then
  conformance() { npx -y @modelcontextprotocol/conformance@0.1.16 "$@"; }
else
  conformance() { npx -y -p node@22 -p @modelcontextprotocol/conformance@0.1.16 -- conformance "$@"; }
fi
# The proxy needs nothing newer than Debian's node.
node .ci/mcp-bearer-proxy.js "$proxy_port" "$port" "$world/config/op-session/mcp-token" >"$world/proxy.log" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$world/proxy.log" 2>/dev/null && break; sleep 0.05; done

conformance server --url "http://127.0.0.1:$proxy_port/mcp" \
  --expected-failures .ci/mcp-conformance-expected-failures.yml -o "$world/results" "$@"
