#!/bin/sh
# Build op-session, op-sessiond and op-session-mcp, install them into $PREFIX/bin (default ~/.local/bin), their
# man pages and shell completions under $PREFIX/share, then install and start the user service
# (systemd or launchd; elsewhere the client starts the daemon on first use) and show its status.
#
# On Linux with glibc the client is linked statically: it runs once per agent tool call, and a
# static binary starts in about two thirds of the time (no dynamic loader, no libgcc_s). It is
# also linked at a fixed address (not position-independent): a static PIE relocates its own
# 4,000 pointers at every start, which costs about 70-100 us a run here (docs/BENCHMARKS.md,
# "Fourth round"). The client is not a trust boundary (it runs as its caller, with its
# caller's arguments); the daemon, which is, stays position-independent.
set -eu
cd "$(dirname "$0")"
prefix=${PREFIX:-$HOME/.local}
host=$(rustc -vV | sed -n 's/^host: //p')

cargo install --locked --path daemon --root "$prefix"
# The MCP server (`op-session mcp` runs it from beside op-session).
cargo install --locked --path crates/mcp --root "$prefix"
case "$host" in
  *-linux-gnu)
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
      cargo install --locked --path client --root "$prefix" --target "$host"
    ;;
  *)
    cargo install --locked --path client --root "$prefix"
    ;;
esac

# Man pages and completions, made by the binaries just installed (packaging/dist.sh, the same
# recipe as the Debian package's).
share=$prefix/share
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
bash packaging/dist.sh "$prefix/bin" "$dist" "$prefix/bin/op-sessiond"
install -d "$share/man/man1" "$share/man/man8" "$share/bash-completion/completions" \
  "$share/zsh/site-functions" "$share/fish/vendor_completions.d"
install -m 644 "$dist/man/op-session.1.gz" "$share/man/man1/"
install -m 644 "$dist/man/op-sessiond.8.gz" "$share/man/man8/"
install -m 644 "$dist/completions/op-session.bash" "$share/bash-completion/completions/op-session"
install -m 644 "$dist/completions/_op-session" "$share/zsh/site-functions/_op-session"
install -m 644 "$dist/completions/op-session.fish" "$share/fish/vendor_completions.d/op-session.fish"
echo "installed man pages (man op-session, man 8 op-sessiond) and completions under $share"
case "$(basename "${SHELL:-sh}")" in
  bash)
    echo "completions (bash): bash-completion loads $share/bash-completion/completions when"
    echo "  $share is \$XDG_DATA_HOME or in \$XDG_DATA_DIRS; otherwise add to ~/.bashrc:"
    echo "  source $share/bash-completion/completions/op-session"
    ;;
  zsh)
    echo "completions (zsh): add to ~/.zshrc, before compinit:"
    echo "  fpath=($share/zsh/site-functions \$fpath); autoload -Uz compinit && compinit"
    ;;
  fish)
    echo "completions (fish): mkdir -p ~/.config/fish/completions &&"
    echo "  ln -sf $share/fish/vendor_completions.d/op-session.fish ~/.config/fish/completions/"
    ;;
  *)
    echo "completions: for bash, zsh and fish under $share (see README, Set up)"
    ;;
esac

"$prefix/bin/op-session" service install
"$prefix/bin/op-session" status
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: add $prefix/bin to PATH (e.g. export PATH=\"$prefix/bin:\$PATH\")" ;;
esac
