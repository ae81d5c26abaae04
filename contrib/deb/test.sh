#!/usr/bin/env bash
# Builds apidns's Debian package with cargo-deb and installs it with dpkg into a fresh Debian
# root made by debootstrap, then checks what the package promises: `apidns check` passes on the
# installed default configuration, the unprivileged `apidns` user exists, the unit, the man page
# and the completions are where Debian puts them.
#
# Usage: contrib/deb/test.sh   (root: debootstrap and chroot need it; installs cargo-deb and
# debootstrap when missing). The root is made once under target/deb-root and reused.
#        contrib/deb/test.sh root   only make that root (CI makes it in the background while it
#                                   compiles: debootstrap waits on the network, not the CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf 'deb-test: %s\n' "$*"; }

if [[ $(id -u) != 0 ]]; then
    echo "deb-test: needs root (debootstrap, chroot); run: sudo contrib/deb/test.sh" >&2
    exit 1
fi
command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

root=target/deb-root
make_root() {
    [[ -x $root/usr/bin/dpkg ]] && return 0
    local mirror
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    if [[ -z $mirror ]]; then
        mirror=$(awk 'tolower($1) == "uris:" { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    fi
    log "debootstrap bookworm from ${mirror:-the default mirror} into $root (about a minute)"
    rm -rf "$root"
    mkdir -p target
    debootstrap --variant=minbase bookworm "$root" ${mirror:+"$mirror"} >/dev/null
}
if [[ ${1:-} == root ]]; then
    make_root
    log "Debian root ready in $root"
    exit 0
fi

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '^3'

deb=$(contrib/deb/build.sh)
log "built $deb"

make_root
# A fresh copy of the root for each run, so that every run installs into a clean system.
work=$(mktemp -d /tmp/apidns-deb-root.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a "$root/." "$work/"
cp "$deb" "$work/tmp/apidns.deb"

in_root() { chroot "$work" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

log "dpkg -i into a fresh Debian root"
in_root dpkg -i /tmp/apidns.deb
in_root apidns --version
log "apidns check on the installed default configuration"
in_root apidns check --config /etc/apidns/apidns.toml
in_root getent passwd apidns | grep -q ':/usr/sbin/nologin$' || {
    echo "deb-test: no system user apidns with a nologin shell" >&2; exit 1; }
for file in /usr/bin/apidns /lib/systemd/system/apidns.service /usr/share/man/man1/apidns.1.gz \
    /usr/share/bash-completion/completions/apidns /usr/share/zsh/vendor-completions/_apidns \
    /usr/share/fish/vendor_completions.d/apidns.fish /etc/apidns/zones/k8s.example.com.toml \
    /usr/share/doc/apidns/configuration.md; do
    [[ -e $work$file ]] || { echo "deb-test: the package did not install $file" >&2; exit 1; }
done
grep -q '^ExecStart=/usr/bin/apidns serve' "$work/lib/systemd/system/apidns.service"
in_root dpkg --purge apidns
in_root getent passwd apidns >/dev/null && { echo "deb-test: purge left the apidns user" >&2; exit 1; }
log "ok: installed, checked, purged"
