#!/usr/bin/env bash
# Build the real node's container runtime from the Go module proxy, once, into a cache keyed by version:
#
#   $cache/bin/containerd-$CONTAINERD_VERSION, containerd-shim-runc-v2-..., ctr-...   (CGO off, static)
#   $cache/bin/runc-$RUNC_VERSION   (cgo against Debian's libseccomp: runc's nsexec is C, and seccomp filters need it)
#
# Why not Debian's: bookworm ships containerd 1.6 and runc 1.1, which cannot run user-namespaced pods
# (`hostUsers: false` needs containerd >= 2.0 and runc >= 1.2 with idmapped mounts). svc_40_node.sh runs these.
# The version ldflags are the ones containerd's and runc's Makefiles set, so `containerd --version` and
# `runc --version` (and the Node's containerRuntimeVersion) say the release.
#
# Usage: testbed/build_runtime.sh [all|containerd|runc]   (warm run: only checks the cache and relinks .testbed/bin)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

containerd_v=${CONTAINERD_VERSION:?CONTAINERD_VERSION missing in testbed/versions.env}
runc_v=${RUNC_VERSION:?RUNC_VERSION missing in testbed/versions.env}
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want containerd; then
  w="$cache/src/containerd-$containerd_v"
  go_wrapper "$w" "github.com/containerd/containerd/v2@$containerd_v"
  ld="-X github.com/containerd/containerd/v2/version.Version=$containerd_v -X github.com/containerd/containerd/v2/version.Revision=$containerd_v"
  # no_btrfs: the btrfs snapshotter needs cgo and btrfs headers; the node uses overlayfs
  for c in containerd containerd-shim-runc-v2 ctr; do
    go_binary "$c" "$containerd_v" "$w" "github.com/containerd/containerd/v2/cmd/$c" "$ld" "no_btrfs urfave_cli_no_docs"
  done
fi

if want runc; then
  [ -f /usr/include/seccomp.h ] || die "libseccomp-dev is missing (testbed/apt-packages.txt; run scripts/setup.sh)"
  w="$cache/src/runc-$runc_v"
  go_wrapper "$w" "github.com/opencontainers/runc@$runc_v"
  CGO_ENABLED=1 go_binary runc "$runc_v" "$w" github.com/opencontainers/runc \
    "-X main.version=${runc_v#v} -X main.gitCommit=$runc_v" "seccomp urfave_cli_no_docs"
fi
log "node runtime ready in $state/bin: containerd $containerd_v, runc $runc_v"
