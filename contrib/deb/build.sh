#!/usr/bin/env bash
# Builds the Debian package: the release binary, then the man page and completions generated
# from it (so they cannot drift from the clap definitions), then `cargo deb --no-build`.
# Prints the path of the .deb on standard output.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked >&2
assets=target/deb-assets
rm -rf "$assets" && mkdir -p "$assets"
target/release/apidns generate man > "$assets/apidns.1"
gzip -9n "$assets/apidns.1"
for shell in bash zsh fish; do
    target/release/apidns generate completions "$shell" > "$assets/apidns.$shell"
done
cargo deb --no-build --strip >&2
ls -t target/debian/apidns_*.deb | head -n 1
