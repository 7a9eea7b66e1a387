#!/usr/bin/env bash
# Generate what the packages ship besides the binaries, from the built binaries and systemd/:
# man pages, shell completions and the packaged user units (ExecStart=/usr/bin/op-sessiond).
#
#   packaging/dist.sh BIN_DIR OUT_DIR [SBIN_PATH]
#
# BIN_DIR holds the built op-session and op-sessiond; OUT_DIR gets man/, completions/ and
# systemd/. SBIN_PATH is where the package puts op-sessiond (default /usr/bin/op-sessiond).
# install.sh and .ci/package both use it, so there is one recipe for these files.
set -euo pipefail
bin=$1
out=$2
daemon_path=${3:-/usr/bin/op-sessiond}
here=$(cd "$(dirname "$0")/.." && pwd)

rm -rf "$out"
mkdir -p "$out/man" "$out/completions" "$out/systemd"
"$bin/op-session" man | gzip -9n > "$out/man/op-session.1.gz"
"$bin/op-sessiond" --man | gzip -9n > "$out/man/op-sessiond.8.gz"
"$bin/op-session" completions bash > "$out/completions/op-session.bash"
"$bin/op-session" completions zsh > "$out/completions/_op-session"
"$bin/op-session" completions fish > "$out/completions/op-session.fish"
for unit in op-sessiond.socket op-sessiond.service; do
  {
    echo "# Generated from systemd/$unit for installation in a system-wide unit directory."
    echo "# Enable it for your user: systemctl --user enable --now op-sessiond.socket"
    sed "s|^ExecStart=/usr/local/bin/op-sessiond|ExecStart=$daemon_path|" "$here/systemd/$unit"
  } > "$out/systemd/$unit"
done
grep -q "^ExecStart=$daemon_path " "$out/systemd/op-sessiond.service"
