#!/usr/bin/env bash
# Build the local stand-in for the CPU image's base (python:3.11-slim-bookworm) where no registry can be
# pulled from: Debian bookworm's own packages (debootstrap, minbase) with Debian's Python 3.11, imported
# as a single-layer image. Does nothing when the image already exists.
#   scripts/make_base.sh IMAGE     e.g. kubealign/bookworm-python:3.11
set -euo pipefail
image=${1:?usage: scripts/make_base.sh IMAGE}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base stand-in $image: present"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "base stand-in $image: debootstrap bookworm (minbase + python3, python3-venv, python3-pip)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$dir" \
  >"$dir.log" 2>&1 || { tail -20 "$dir.log"; exit 1; }
rm -f "$dir.log"
# This machine's own extra CAs (e.g. a TLS-inspecting egress proxy's), so pip inside builds on this base
# reaches PyPI the way the host does. A stand-in's property only: the real base is used as published.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
  chroot "$dir" update-ca-certificates >/dev/null
fi
# Clean apt lists and caches as the slim images do; nothing in the image needs them.
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
# mktemp made the root folder 0700: the image's / must be 0755, or no non-root user can start anything.
chmod 0755 "$dir"
tar -C "$dir" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$image"
