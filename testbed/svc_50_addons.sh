#!/usr/bin/env bash
# What a k3s-like cluster ships besides its node, on the real node of the testbed:
#   - cluster DNS: CoreDNS (kube-system/kube-dns on $TESTBED_DNS_IP): *.svc.cluster.local, and every name in
#     $TESTBED_DOMAIN_ZONE answered with the ingress controller's ClusterIP; no upstream (nothing leaves the testbed);
#   - an ingress controller: Traefik v3 (IngressClass `traefik`, hostPorts 80/443 on $TESTBED_NODE_IP, Service on
#     $TESTBED_INGRESS_IP). coderstack's ingress role finds it as an existing IngressClass, as on k3s.
# The host resolves $TESTBED_HOSTNAMES (default coder.$TESTBED_DOMAIN_ZONE) to the node IP through marked /etc/hosts
# lines (testbed/net.sh hosts; down.sh removes them).
# Usage: svc_50_addons.sh start|stop|status
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
export PATH="$state/bin:$PATH" KUBECONFIG="$state/kubeconfig"
export COREDNS_VERSION TRAEFIK_VERSION
manifests="$testbed_here/manifests"
hostnames=${TESTBED_HOSTNAMES:-coder.$TESTBED_DOMAIN_ZONE}

# ready NS DEPLOYMENT: rollout finished, or print the pods and the last events and fail
ready() {
  kubectl -n "$1" rollout status "deployment/$2" --timeout="${TESTBED_ADDON_TIMEOUT:-180}s" >/dev/null && return 0
  kubectl -n "$1" get pods -o wide >&2 || true
  kubectl -n "$1" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
  die "deployment $1/$2 is not ready"
}

case ${1:-status} in
  start)
    t0=$SECONDS
    for m in coredns traefik; do
      envsubst '${TESTBED_REGISTRY} ${COREDNS_VERSION} ${TRAEFIK_VERSION} ${TESTBED_DNS_IP} ${TESTBED_INGRESS_IP} ${TESTBED_NODE_IP} ${TESTBED_DOMAIN_ZONE}' \
        <"$manifests/$m.yaml" | kubectl apply --server-side --force-conflicts --field-manager coderstack-testbed -f - >/dev/null
    done
    ready kube-system coredns
    ready traefik traefik
    # shellcheck disable=SC2086 # one argument per name
    bash "$testbed_here/net.sh" hosts $hostnames
    log "cluster DNS ($TESTBED_DNS_IP) and Traefik (IngressClass traefik, https://$TESTBED_NODE_IP) ready in $((SECONDS - t0))s"
    ;;
  stop) ;;  # the objects go with the cluster; svc_40_node.sh stops their pods, net.sh down removes the hosts lines
  status)
    kubectl -n kube-system get deployment coredns >/dev/null 2>&1 && kubectl -n traefik get deployment traefik >/dev/null 2>&1 \
      || { echo "addons: not installed"; exit 1; }
    echo "addons: coredns, traefik"
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
