#!/usr/bin/env bash
# Seeds the local image tag `debian:bookworm-slim`, which every lab Dockerfile builds FROM, on a
# machine that has no image registry: a minimal Debian bookworm root file system made with
# debootstrap from the Debian mirror that apt already uses here, trimmed the way the official
# slim image is, and imported with `docker import`. The Dockerfiles stay exactly as they would be
# with a registry; this only stands in for `docker pull debian:bookworm-slim`.
#
# Usage: lab/seed-base-image.sh [--force]   (root; needs debootstrap and a running Docker engine)
set -euo pipefail

TAG=debian:bookworm-slim
SUITE=bookworm

if [[ ${1:-} != --force ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "seed-base-image: $TAG is already present"
    exit 0
fi

# The Debian mirror that apt uses on this machine: the first source of suite $1, from one-line
# (`deb URI SUITE COMPONENTS`) or deb822 (`URIs:` / `Suites:`) sources files.
mirror_for() {
    local suite=$1 files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    shopt -s nullglob
    files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    shopt -u nullglob
    ((${#files[@]})) || return 0
    awk -v suite="$suite" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ") && uris != "") {
                split(uris, u, " "); print u[1]; found = 1; exit
            }
            types = ""; suites = ""; uris = ""; enabled = ""
        }
        FNR == 1 { flush() }
        /^[[:space:]]*#/ { next }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[[:space:]]*$/) { flush(); next }
            key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
            if (key == "types") types = $0
            else if (key == "uris") uris = $0
            else if (key == "suites") suites = $0
            else if (key == "enabled") enabled = tolower($0)
            next
        }
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; found = 1; exit }
        }
        END { if (!found) flush() }
    ' "${files[@]}"
}

MIRROR=$(mirror_for "$SUITE")
SECURITY=$(mirror_for "$SUITE-security")
if [[ -z $MIRROR ]]; then
    echo "seed-base-image: no Debian mirror for $SUITE in /etc/apt/sources.list{,.d}" >&2
    exit 1
fi
MIRROR=${MIRROR%/}
SECURITY=${SECURITY%/}
echo "seed-base-image: debootstrap $SUITE from $MIRROR"

ROOTFS=$(mktemp -d /var/tmp/apidns-lab-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

nice debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 30 "$ROOTFS.log" >&2
    rm -f "$ROOTFS.log"
    exit 1
}
rm -f "$ROOTFS.log"

# The same package sources as the official image (bookworm, bookworm-updates, bookworm-security),
# from this machine's mirrors.
rm -f "$ROOTFS/etc/apt/sources.list"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" "$SUITE" "$SUITE"
    if [[ -n $SECURITY ]]; then
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$SECURITY" "$SUITE"
    fi
} >"$ROOTFS/etc/apt/sources.list.d/debian.sources"

# If this machine's apt accepts Release files past their Valid-Until date (a mirror that serves a
# snapshot of the archive), the image must too, or `apt-get update` fails inside every build.
if apt-config dump Acquire::Check-Valid-Until 2>/dev/null | grep -qi '"false"'; then
    printf 'Acquire::Check-Valid-Until "false";\n' >"$ROOTFS/etc/apt/apt.conf.d/99mirror-snapshot"
fi

# What the official slim image does: no documentation, no caches of .deb files or package lists,
# no recommends by surprise in a small image, no service starts during builds.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
printf 'Acquire::Languages "none";\n' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
printf 'Acquire::GzipIndexes "true";\n' >"$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes"
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

find "$ROOTFS/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOTFS"/usr/share/{man,info,groff,lintian,linda}/* \
    "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
: >"$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/resolv.conf"
rm -f "$ROOTFS/etc/machine-id" && : >"$ROOTFS/etc/machine-id"

tar --numeric-owner -C "$ROOTFS" -c . |
    docker import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $SUITE $MIRROR" - "$TAG" >/dev/null
echo "seed-base-image: imported $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}'))"
