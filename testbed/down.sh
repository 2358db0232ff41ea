#!/usr/bin/env bash
# Stop the testbed and put the host back as up.sh found it: services in reverse order (the real node first undoes
# its pods, mounts, cgroups and iptables chains), then the control plane, then the network (testbed/net.sh down:
# bridge, routes, the FORWARD guard, sysctls, /etc/hosts lines).
#   --purge  also delete its state (etcd data, certificates, volumes, databases); cached binaries and images stay.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
mapfile -t svcs < <(ls -1 "$testbed_here"/svc_*.sh 2>/dev/null | sort -r)
for svc in "${svcs[@]}"; do bash "$svc" stop || true; done
for d in provisioner kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$d"; done
bash "$testbed_here/net.sh" down
if [ "${1:-}" = "--purge" ]; then
  # volumes of pods may hold files of other uids or read-only bits: rm -rf copes
  find "$state" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} +
  log "testbed state purged ($state)"
fi
