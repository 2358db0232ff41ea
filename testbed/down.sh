#!/usr/bin/env bash
# Stop the testbed (services in reverse order, then the control plane).
#   --purge  also delete its state (etcd data, certificates, volumes, databases); cached binaries stay.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
mapfile -t svcs < <(ls -1 "$testbed_here"/svc_*.sh 2>/dev/null | sort -r)
for svc in "${svcs[@]}"; do bash "$svc" stop || true; done
for d in provisioner kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$d"; done
if [ "${1:-}" = "--purge" ]; then
  find "$state" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} +
  log "testbed state purged ($state)"
fi
