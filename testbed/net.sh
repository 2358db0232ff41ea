#!/usr/bin/env bash
# The testbed's own network on the host, and every other host change the testbed makes, recorded so that
# `net.sh down` puts the host back as it found it:
#   - bridge $TESTBED_BRIDGE with $TESTBED_NODE_IP/24: the real node's IP, the pods' gateway, and the address
#     the kube-apiserver, the registry and PostgreSQL listen on for pods (besides 127.0.0.1 where they have it);
#   - routes: the Service CIDR via the bridge (never the default route, even when kube-proxy is not running),
#     kwok's simulated pod CIDR unreachable;
#   - iptables chain CODERSTACK-TESTBED, first in FORWARD: a forwarded packet either stays on the bridge or is
#     dropped, so pods reach nothing beyond the testbed (no masquerade, no route out);
#   - sysctls that the bridge plugin and the kubelet change (saved once, restored by `down`);
#   - /etc/hosts lines marked "# coderstack-testbed <state dir>" for $TESTBED_DOMAIN_ZONE names (`hosts NAME...`).
# Usage: net.sh up | down | hosts NAME... | status
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

br=$TESTBED_BRIDGE
chain=CODERSTACK-TESTBED
saved="$state/host/sysctl.saved"
marker="# coderstack-testbed $state"
sysctls=(net.ipv4.ip_forward vm.overcommit_memory kernel.panic kernel.panic_on_oops)

save_sysctls() {
  [ -s "$saved" ] && return 0
  mkdir -p "$(dirname "$saved")"
  local k
  for k in "${sysctls[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$saved.tmp"
  mv "$saved.tmp" "$saved"
}

restore_sysctls() {
  [ -s "$saved" ] || return 0
  local kv
  while IFS= read -r kv; do sysctl -q -w "$kv" >/dev/null || log "WARNING: could not restore $kv"; done <"$saved"
  rm -f "$saved"
}

up() {
  command -v ip >/dev/null && command -v iptables >/dev/null || die "ip and iptables are needed (testbed/apt-packages.txt)"
  save_sysctls
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add "$br" type bridge
    log "bridge $br created"
  fi
  ip addr show dev "$br" | grep -q "inet $TESTBED_NODE_IP/24" || ip addr add "$TESTBED_NODE_IP/24" dev "$br"
  ip link set "$br" up
  ip route replace "$TESTBED_SERVICE_CIDR" dev "$br" src "$TESTBED_NODE_IP"
  ip route replace unreachable "$TESTBED_KWOK_CIDR"
  iptables -w -N "$chain" 2>/dev/null || true
  iptables -w -F "$chain"
  iptables -w -A "$chain" -i "$br" -o "$br" -j ACCEPT -m comment --comment "coderstack testbed: pods and services on the bridge"
  iptables -w -A "$chain" -j DROP -m comment --comment "coderstack testbed: nothing else is forwarded"
  iptables -w -C FORWARD -j "$chain" 2>/dev/null || iptables -w -I FORWARD 1 -j "$chain"
  log "network $br $TESTBED_NODE_IP/24 ready (forwarding limited to the bridge)"
}

hosts() {
  local tmp
  tmp=$(mktemp)
  grep -vF "$marker" /etc/hosts >"$tmp" || true
  local n
  for n in "$@"; do printf '%s %s %s\n' "$TESTBED_NODE_IP" "$n" "$marker" >>"$tmp"; done
  # /etc/hosts may be a bind mount: rewrite it in place
  cat "$tmp" >/etc/hosts
  rm -f "$tmp"
}

down() {
  if grep -qF "$marker" /etc/hosts 2>/dev/null; then hosts; fi
  while iptables -w -C FORWARD -j "$chain" 2>/dev/null; do iptables -w -D FORWARD -j "$chain"; done
  iptables -w -F "$chain" 2>/dev/null || true
  iptables -w -X "$chain" 2>/dev/null || true
  ip route del "$TESTBED_SERVICE_CIDR" dev "$br" 2>/dev/null || true
  ip route del unreachable "$TESTBED_KWOK_CIDR" 2>/dev/null || true
  if ip link show "$br" >/dev/null 2>&1; then ip link del "$br"; log "bridge $br removed"; fi
  restore_sysctls
}

case ${1:-status} in
  up) up ;;
  down) down ;;
  hosts) shift; hosts "$@" ;;
  status) ip -br addr show dev "$br" 2>/dev/null || { echo "network: down"; exit 1; } ;;
  *) die "usage: $0 up|down|hosts NAME...|status" ;;
esac
