#!/usr/bin/env bash
# Exit 0 when the testbed's API server answers; print each daemon's state.
set -uo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
rc=0
for d in etcd kube-apiserver kube-controller-manager kube-scheduler kwok provisioner; do
  if [ -f "$state/pids/$d.pid" ] && running "$(cat "$state/pids/$d.pid")"; then echo "$d: running"; else echo "$d: stopped"; rc=1; fi
done
for svc in "$testbed_here"/svc_*.sh; do [ -e "$svc" ] && { bash "$svc" status || true; }; done
"$state/bin/kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz >/dev/null 2>&1 || rc=1
exit $rc
