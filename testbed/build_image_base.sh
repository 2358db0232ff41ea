#!/usr/bin/env bash
# The local base image the workspace-image tests build FROM (no registry can be pulled from):
#   debootstrap --variant=minbase <suite> into $cache/rootfs/, imported with `podman import` as
#   localhost/coderstack-base:<suite>. Also writes the podman config the testbed uses
#   ($state/containers/containers.conf: runtime runc, ulimits) -- nothing under /etc is changed.
# Usage: build_image_base.sh [all|conf]   (scripts/setup.sh runs it without arguments)
# Env: CODERSTACK_BASE_SUITE (bookworm), CODERSTACK_DEBIAN_MIRROR (http://deb.debian.org/debian)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

suite=${CODERSTACK_BASE_SUITE:-bookworm}
mirror=${CODERSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base_ref="localhost/coderstack-base:$suite"
conf="$state/containers/containers.conf"

# Debian's crun fails here ("cgroups in hybrid mode not supported"): podman/buildah use runc;
# `podman run` needs explicit ulimits in this sandbox. Pointed at by CONTAINERS_CONF.
write_conf() {
  mkdir -p "$(dirname "$conf")"
  cat >"$conf.tmp" <<'CONF'
# Written by testbed/build_image_base.sh; used through CONTAINERS_CONF by the testbed and tests.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  mv "$conf.tmp" "$conf"
}

write_conf
export CONTAINERS_CONF="$conf"
[ "${1:-all}" = conf ] && exit 0

command -v podman >/dev/null || die "podman is missing (testbed/apt-packages.txt; run scripts/setup.sh)"
if podman image exists "$base_ref"; then
  log "base image $base_ref present"
  exit 0
fi

tarball="$cache/rootfs/debian-$suite-minbase.tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || die "debootstrap is missing (testbed/apt-packages.txt)"
  root="$cache/rootfs/debian-$suite-minbase"
  rm -rf "$root" && mkdir -p "$root"
  log "debootstrap --variant=minbase $suite from $mirror (about 25 s on a warm mirror)"
  t0=$SECONDS
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/rootfs/debootstrap-$suite.log" 2>&1 \
    || { tail -n 30 "$cache/rootfs/debootstrap-$suite.log" >&2; die "debootstrap failed"; }
  cat >"$root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SRC
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  log "rootfs $tarball made in $((SECONDS - t0))s"
fi
log "importing $tarball as $base_ref"
podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$base_ref" >/dev/null
log "base image $base_ref ready"
