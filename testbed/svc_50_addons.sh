#!/usr/bin/env bash
# What a k3s-like cluster ships besides its node, on the real node of the testbed:
#   - cluster DNS: CoreDNS (kube-system/kube-dns on $TESTBED_DNS_IP): *.svc.cluster.local, and every name in
#     $TESTBED_DOMAIN_ZONE answered with the ingress controller's ClusterIP; no upstream (nothing leaves the testbed);
#   - an ingress controller: Traefik v3 (IngressClass `traefik`, hostPorts 80/443 on $TESTBED_NODE_IP, Service on
#     $TESTBED_INGRESS_IP). coderstack's ingress role finds it as an existing IngressClass, as on k3s;
#   - walkthrough 002's "other cluster": a ServiceAccount allowed to create workspaces in $TESTBED_REMOTE_NAMESPACE
#     only (manifests/remote-workspaces.yaml) and its kubeconfig, $state/remote-kubeconfig (the testbed inventory hands
#     it to the coder role as walkthrough 002 does).
# The host resolves $TESTBED_HOSTNAMES (default coder., bare., minikube. and modes.$TESTBED_DOMAIN_ZONE) to the node IP through marked /etc/hosts
# lines (testbed/net.sh hosts; down.sh removes them).
# Usage: svc_50_addons.sh start|stop|status
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
export PATH="$state/bin:$PATH" KUBECONFIG="$state/kubeconfig"
export COREDNS_VERSION TRAEFIK_VERSION
manifests="$testbed_here/manifests"
# coder.<zone>: the testbed inventory; bare.<zone>, minikube.<zone>: the shipped inventories converged on the testbed
# (testbed/on-testbed/, tests/integration/inventories); modes.<zone>: the testbed inventory again in another docker mode
# (tests/integration/workspace/test_docker_modes.py, bench/run.py)
export TESTBED_REMOTE_NAMESPACE=${TESTBED_REMOTE_NAMESPACE:-testbed-remote}
hostnames=${TESTBED_HOSTNAMES:-coder.$TESTBED_DOMAIN_ZONE bare.$TESTBED_DOMAIN_ZONE minikube.$TESTBED_DOMAIN_ZONE modes.$TESTBED_DOMAIN_ZONE}

# ready NS DEPLOYMENT: rollout finished, or print the pods and the last events and fail
ready() {
  kubectl -n "$1" rollout status "deployment/$2" --timeout="${TESTBED_ADDON_TIMEOUT:-180}s" >/dev/null && return 0
  kubectl -n "$1" get pods -o wide >&2 || true
  kubectl -n "$1" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
  die "deployment $1/$2 is not ready"
}

# The Deployments' status can be stale right after the node restarted (their pods get new sandboxes): wait for the
# services themselves. dns_answers: CoreDNS answers an A query for the API Service through its ClusterIP.
dns_answers() {
  python3 - "$TESTBED_DNS_IP" <<'PY'
import socket, struct, sys
name = b"".join(bytes([len(p)]) + p for p in b"kubernetes.default.svc.cluster.local".split(b".")) + b"\0"
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(query, (sys.argv[1], 53))
reply = s.recv(512)
sys.exit(0 if reply[:2] == b"\x12\x34" and reply[3] & 0x0F == 0 and struct.unpack(">H", reply[6:8])[0] > 0 else 1)
PY
}
# remote_kubeconfig: the kubeconfig of the remote-workspaces identity, from its token Secret (filled by the token
# controller), with the API server's address and CA as the host's kubeconfig has them; written when it changes
remote_kubeconfig() {
  local token server ca file=$state/remote-kubeconfig
  token=$(kubectl -n "$TESTBED_REMOTE_NAMESPACE" get secret coder-provisioner-token -o 'jsonpath={.data.token}' 2>/dev/null) || return 1
  [ -n "$token" ] || return 1
  server=$(kubectl config view --raw --minify -o 'jsonpath={.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw --minify -o 'jsonpath={.clusters[0].cluster.certificate-authority-data}')
  umask 077
  cat >"$file.new" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: remote
    cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
  - name: coder-provisioner
    user: {token: "$(printf %s "$token" | base64 -d)"}
contexts:
  - name: remote
    context: {cluster: remote, user: coder-provisioner, namespace: "$TESTBED_REMOTE_NAMESPACE"}
current-context: remote
EOF
  if cmp -s "$file.new" "$file"; then rm -f "$file.new"; else mv "$file.new" "$file"; fi
}
# ingress_answers: Traefik answers HTTP on the node IP (404 for a host without a route)
ingress_answers() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$TESTBED_NODE_IP/")" != 000 ]; }

case ${1:-status} in
  start)
    t0=$SECONDS
    for m in coredns traefik remote-workspaces; do
      envsubst '${TESTBED_REGISTRY} ${COREDNS_VERSION} ${TRAEFIK_VERSION} ${TESTBED_DNS_IP} ${TESTBED_INGRESS_IP} ${TESTBED_NODE_IP} ${TESTBED_DOMAIN_ZONE} ${TESTBED_REMOTE_NAMESPACE}' \
        <"$manifests/$m.yaml" | kubectl apply --server-side --force-conflicts --field-manager coderstack-testbed -f - >/dev/null
    done
    ready kube-system coredns
    ready traefik traefik
    wait_for "cluster DNS on $TESTBED_DNS_IP" 120 dns_answers || die "CoreDNS does not answer on $TESTBED_DNS_IP:53"
    wait_for "Traefik on http://$TESTBED_NODE_IP" 120 ingress_answers || die "Traefik does not answer on $TESTBED_NODE_IP:80"
    wait_for "the remote-workspaces token" 60 remote_kubeconfig \
      || die "Secret $TESTBED_REMOTE_NAMESPACE/coder-provisioner-token has no token (is the token controller running?)"
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
