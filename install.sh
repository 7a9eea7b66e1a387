#!/bin/sh
# Build op-session and op-sessiond, install them into $PREFIX/bin (default ~/.local/bin), then
# install and start the user service (systemd or launchd; elsewhere the client starts the daemon
# on first use) and show its status.
#
# On Linux with glibc the client is linked statically: it runs once per agent tool call, and a
# static binary starts in about two thirds of the time (no dynamic loader, no libgcc_s).
set -eu
cd "$(dirname "$0")"
prefix=${PREFIX:-$HOME/.local}
host=$(rustc -vV | sed -n 's/^host: //p')

cargo install --locked --path daemon --root "$prefix"
case "$host" in
  *-linux-gnu)
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo install --locked --path client --root "$prefix" --target "$host"
    ;;
  *)
    cargo install --locked --path client --root "$prefix"
    ;;
esac

"$prefix/bin/op-session" service install
"$prefix/bin/op-session" status
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: add $prefix/bin to PATH (e.g. export PATH=\"$prefix/bin:\$PATH\")" ;;
esac
