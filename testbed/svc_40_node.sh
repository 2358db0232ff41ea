#!/usr/bin/env bash
# The testbed's real node, $TESTBED_NODE_NAME on $TESTBED_NODE_IP: containerd 2.x + runc (testbed/build_runtime.sh), the CNI plugins
# (bridge on $TESTBED_BRIDGE, host-local IPAM in $TESTBED_POD_CIDR, portmap for hostPorts, loopback), and kubelet +
# kube-proxy built from the same k8s.io/kubernetes module as the control plane (testbed/build.sh).
#   - kubelet: x509 client certificate (system:node:<name>), serving certificate signed by the testbed CA, no
#     anonymous access, Webhook authn/authz (the apiserver calls it with its own client certificate);
#   - containerd pulls from the testbed registry with its CA and credentials, sandbox image = the local pause image;
#   - kube-proxy (iptables mode) serves ClusterIPs and NodePorts on the node IP only.
# Everything lives under $state/node; `stop` undoes every host change: pods and shims, kube-proxy's chains,
# KUBE-FIREWALL, mounts under the kubelet root, /kubepods cgroups, CNI leftovers, the Node object.
# Usage: svc_40_node.sh start|stop|status|firewall-start|firewall-stop
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

node=$TESTBED_NODE_NAME
dir="$state/node"
pki="$state/pki"
sock="$dir/containerd/containerd.sock"
kroot="$dir/kubelet"
export PATH="$state/bin:$PATH"
export KUBECONFIG="$state/kubeconfig"

config() {
  mkdir -p "$dir/containerd" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/certs.d/$TESTBED_REGISTRY" "$kroot" "$dir/kube-proxy"
  local user pass
  user=$(cat "$state/registry/username"); pass=$(cat "$state/registry/password")
  # The registry's credentials as a static Authorization header of its hosts.toml (the CRI `registry.configs.*.auth`
  # table is deprecated in containerd 2.x): only the node can read it
  (umask 077; cat >"$dir/certs.d/$TESTBED_REGISTRY/hosts.toml" <<EOF
# Written by testbed/svc_40_node.sh
server = "https://$TESTBED_REGISTRY"
[host."https://$TESTBED_REGISTRY"]
  capabilities = ["pull", "resolve"]
  ca = "$state/registry/ca/ca.crt"
  [host."https://$TESTBED_REGISTRY".header]
    Authorization = "Basic $(printf '%s:%s' "$user" "$pass" | base64 -w0)"
EOF
  )
  cat >"$dir/containerd/config.toml" <<EOF
# Written by testbed/svc_40_node.sh (containerd 2.4's configuration format, version 4)
version = 4
root = "$dir/containerd/root"
state = "$dir/containerd/state"
# nothing from the host's /etc/containerd/conf.d (the default)
imports = []
[plugins.'io.containerd.server.v1.grpc']
  address = "$sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$sock.ttrpc"
[debug]
  level = "warn"
# NRI would listen on /var/run/nri/nri.sock, a host path the node does not need
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$TESTBED_REGISTRY/coderstack-testbed/pause:1"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$dir/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  # no CAP_SYS_RESOURCE for lowering oom_score_adj here
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$state/bin/runc"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni/net.d"
EOF
  cat >"$dir/cni/net.d/10-coderstack-testbed.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "coderstack-testbed",
  "plugins": [
    {"type": "bridge", "bridge": "$TESTBED_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam", "ranges": [[{"subnet": "$TESTBED_POD_CIDR", "gateway": "$TESTBED_NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
EOF
  # pods with dnsPolicy Default get this (no resolver: nothing resolves beyond the testbed)
  echo "# coderstack testbed: no upstream resolver" >"$dir/resolv.conf"
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $TESTBED_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${TESTBED_KUBELET_HEALTHZ_PORT:-10248}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
makeIPTablesUtilChains: false
clusterDNS: [$TESTBED_DNS_IP]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
evictionHard: {memory.available: "0%", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
staticPodPath: ""
EOF
  # written only when it differs: kube-proxy exits when its config file is written to ("content of the proxy server's
  # configuration file was updated"), and a second `start` (up.sh re-run) would otherwise end it silently, leaving
  # every ClusterIP pointing at the pod addresses of that moment
  cat >"$dir/kube-proxy/config.yaml.new" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $pki/kube-proxy.kubeconfig}
hostnameOverride: $node
mode: iptables
clusterCIDR: $TESTBED_POD_CIDR
bindAddress: $TESTBED_NODE_IP
healthzBindAddress: 127.0.0.1:${TESTBED_KUBE_PROXY_HEALTHZ_PORT:-10256}
metricsBindAddress: 127.0.0.1:${TESTBED_KUBE_PROXY_METRICS_PORT:-10249}
nodePortAddresses: [$TESTBED_NODE_IP/32]
iptables: {localhostNodePorts: false, masqueradeAll: false}
# 0 = leave the host's conntrack sysctls alone
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  if cmp -s "$dir/kube-proxy/config.yaml.new" "$dir/kube-proxy/config.yaml"; then rm -f "$dir/kube-proxy/config.yaml.new"
  else mv "$dir/kube-proxy/config.yaml.new" "$dir/kube-proxy/config.yaml"; fi
}

node_ready() {
  [ "$(kubectl get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

start() {
  for b in kubelet kube-proxy kube-router; do
    [ -x "$state/bin/$b" ] || die "$state/bin/$b is missing: run scripts/setup.sh (testbed/build.sh)"
  done
  for b in containerd containerd-shim-runc-v2 ctr runc; do
    [ -x "$state/bin/$b" ] || die "$state/bin/$b is missing: run scripts/setup.sh (testbed/build_runtime.sh)"
  done
  [ -f "$state/images/pause.pushed" ] || die "the pause image is not in the registry (testbed/svc_30_images.sh start)"
  local t0=$SECONDS
  config
  # host paths containerd and CNI use whatever they are configured with: remember the ones that did not exist
  local p
  if [ ! -f "$dir/host-paths.absent" ]; then
    for p in /run/containerd /var/lib/cni /run/netns; do [ -e "$p" ] || echo "$p"; done >"$dir/host-paths.absent"
  fi
  # Pod network namespaces are bind mounts under /run/netns. Make it a shared mount point of its own first, as
  # `ip netns` and podman do: otherwise the first of those to do it later covers the pods' namespaces and the
  # kubelet can never remove them (pods stuck Terminating: "unlinkat /run/netns/cni-...: device or resource busy").
  mkdir -p /run/netns
  if ! mountpoint -q /run/netns; then
    mount --bind /run/netns /run/netns && touch "$dir/netns-mount.ours"
  fi
  mount --make-shared /run/netns
  start_daemon containerd containerd --config "$dir/containerd/config.toml"
  wait_for "containerd on $sock" 30 ctr --address "$sock" version \
    || { tail -n 30 "$state/logs/containerd.log" >&2; die "containerd did not start"; }
  # restarted when it exits, as systemd does on a real node: right after a restart containerd's CRI can still be
  # recovering its pods ("server is not initialized yet"), and the kubelet exits when it finds it so
  start_daemon kubelet bash -c 'while :; do "$@"; echo "kubelet exited ($?), restarting in 2 s" >&2; sleep 2; done' \
    kubelet kubelet --config "$dir/kubelet.yaml" --kubeconfig "$pki/kubelet.kubeconfig" \
    --root-dir "$kroot" --hostname-override "$node" --node-ip "$TESTBED_NODE_IP" \
    --node-labels "coderstack.io/testbed-node=real" --v=1
  # restarted when it exits, as systemd does on a real node (it exits by design when its config file changes)
  start_daemon kube-proxy bash -c 'while :; do "$@"; echo "kube-proxy exited ($?), restarting in 2 s" >&2; sleep 2; done' \
    kube-proxy kube-proxy --config "$dir/kube-proxy/config.yaml" --v=1
  wait_for "node $node to be Ready" 120 node_ready \
    || { kubectl describe node "$node" >&2 || true; tail -n 40 "$state/logs/kubelet.log" >&2; die "node $node did not become Ready"; }
  firewall_start
  log "real node $node Ready on $TESTBED_NODE_IP in $((SECONDS - t0))s"
}

# NetworkPolicy enforcement (kube-router's firewall controller) on and off; `firewall-stop` alone leaves a node whose
# CNI enforces no policy (a test proves preflight notices), `firewall-start` enforces them again.
firewall_start() {
  # NetworkPolicy enforcement, which the bridge CNI plugin lacks: kube-router's firewall controller only (no routing,
  # no service proxy, no CNI config), as k3s embeds it. iptables + ipset on this host; the admin kubeconfig (it lists
  # pods, namespaces and NetworkPolicies cluster-wide); health on loopback, no metrics. Started once the Node object
  # exists (it exits at once when it cannot find its node: policies would then silently go unenforced), restarted
  # when it exits, and waited for: up.sh fails rather than run a testbed whose policies nothing enforces.
  start_daemon kube-router bash -c 'while :; do "$@"; echo "kube-router exited ($?), restarting in 2 s" >&2; sleep 2; done' \
    kube-router kube-router --kubeconfig "$state/kubeconfig" --hostname-override "$node" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false --enable-cni=false \
    --service-cluster-ip-range "$TESTBED_SERVICE_CIDR" --health-port "${TESTBED_KUBE_ROUTER_HEALTH_PORT:-20244}" \
    --metrics-port 0 --iptables-sync-period 1m --v=1
  wait_for "kube-router's firewall controller (healthz)" 60 \
    curl -fsS --max-time 2 "http://127.0.0.1:${TESTBED_KUBE_ROUTER_HEALTH_PORT:-20244}/healthz" \
    || { tail -n 20 "$state/logs/kube-router.log" >&2; die "kube-router did not start: NetworkPolicies would not be enforced"; }
}

firewall_stop() {
  stop_daemon kube-router
  # kube-router's firewall chains and ipsets (its own --cleanup-config panics in the IPVS cleanup, which runs first
  # and finds no IPVS here): the jumps from INPUT/FORWARD/OUTPUT, then its chains, then its KUBE-SRC-/KUBE-DST- sets
  local c r ch s
  for c in INPUT FORWARD OUTPUT; do
    for r in $(iptables -w -S "$c" 2>/dev/null | grep -n -- '-j KUBE-ROUTER-' | cut -d: -f1 | sort -rn); do
      iptables -w -D "$c" "$((r - 1))" 2>/dev/null || true
    done
  done
  local router_chains
  router_chains=$(iptables -w -S 2>/dev/null | awk '/^-N (KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-)/{print $2}')
  for ch in $router_chains; do iptables -w -F "$ch" 2>/dev/null || true; done
  for ch in $router_chains; do iptables -w -X "$ch" 2>/dev/null || true; done
  for s in $(ipset list -n 2>/dev/null | grep -E '^KUBE-(SRC|DST)-'); do ipset destroy "$s" 2>/dev/null || true; done
}

# Everything a node leaves on the host, in the order that lets each step succeed.
stop() {
  if [ -S "$sock" ] && running "$(cat "$state/pids/containerd.pid" 2>/dev/null || echo 0)"; then
    stop_daemon kubelet
    # end every container of this node
    local ids
    ids=$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null || true)
    for id in $ids; do ctr --address "$sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1 || true; done
  fi
  stop_daemon kubelet
  stop_daemon kube-proxy
  firewall_stop
  [ -x "$state/bin/kube-proxy" ] && "$state/bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop_daemon containerd
  # shims outlive containerd: end the ones of this node (their -address names our socket)
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true
  local i
  for i in KUBE-FIREWALL KUBE-KUBELET-CANARY; do
    for t in iptables ip6tables; do
      for c in INPUT OUTPUT; do while $t -w -C "$c" -j "$i" 2>/dev/null; do $t -w -D "$c" -j "$i"; done; done
      $t -w -F "$i" 2>/dev/null || true; $t -w -X "$i" 2>/dev/null || true
      for tb in nat mangle; do $t -w -t "$tb" -F "$i" 2>/dev/null || true; $t -w -t "$tb" -X "$i" 2>/dev/null || true; done
    done
  done
  # portmap/bridge CNI chains left by pods that were not torn down
  for c in $(iptables -w -t nat -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -w -t nat -F "$c" 2>/dev/null || true; done
  for c in POSTROUTING PREROUTING OUTPUT; do
    for r in $(iptables -w -t nat -S "$c" 2>/dev/null | grep -n -- '-j CNI-' | cut -d: -f1 | sort -rn); do
      iptables -w -t nat -D "$c" "$((r - 1))" 2>/dev/null || true
    done
  done
  for c in $(iptables -w -t nat -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -w -t nat -X "$c" 2>/dev/null || true; done
  # mounts under this node's directories (pod volumes, the kubelet's bind mount of its root, container rootfs)
  local m
  for m in $(awk -v d="$dir" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  for m in $(awk '$2 ~ "^/run/containerd/io.containerd" {print $2}' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  # pod network namespaces (their end of each veth goes with them), then veths still on the bridge
  for m in /run/netns/cni-*; do [ -e "$m" ] || continue; umount "$m" 2>/dev/null || true; rm -f "$m"; done
  if [ -f "$dir/netns-mount.ours" ]; then umount /run/netns 2>/dev/null || true; rm -f "$dir/netns-mount.ours"; fi
  for m in $(ip -o link show master "$TESTBED_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$m" 2>/dev/null || true
  done
  # cgroups the kubelet made in every hierarchy (leaf first)
  for m in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$m" ] && find "$m" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if [ -f "$dir/host-paths.absent" ]; then
    while IFS= read -r m; do [ -n "$m" ] && rm -rf "$m"; done <"$dir/host-paths.absent"
    rm -f "$dir/host-paths.absent"
  fi
  kubectl delete node "$node" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

case ${1:-status} in
  start) start ;;
  stop) stop ;;
  firewall-start) firewall_start ;;
  firewall-stop) firewall_stop ;;
  status)
    if node_ready; then echo "node $node: Ready"; else echo "node $node: not ready"; exit 1; fi
    ;;
  *) die "usage: $0 start|stop|status|firewall-start|firewall-stop" ;;
esac
