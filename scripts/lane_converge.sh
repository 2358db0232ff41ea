#!/usr/bin/env bash
# The current-Ansible lane's converge (scripts/lane.sh: ansible-core 2.21, Python 3.13): the shipped `bare` inventory
# (with testbed/on-testbed/common.yml and bare.yml, its own namespaces and DNS name, as
# tests/integration/inventories does) from nothing, then again, on plain `linear` (no third-party strategy: Mitogen's
# settings are dropped). The second run must report changed=0. Prints both times; removes what it made afterwards.
# Needs the testbed up (bash testbed/up.sh) and the lane set up (bash scripts/lane.sh --setup).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
say() { printf '[lane-converge %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
state=${CODERSTACK_TESTBED_DIR:-$repo/.testbed}
ns=coder-bare

cleanup() {
  "$state/bin/helm" --kubeconfig "$state/kubeconfig" uninstall coder -n "$ns" --wait >/dev/null 2>&1 || true
  "$state/bin/kubectl" --kubeconfig "$state/kubeconfig" delete namespace "$ns" "$ns-workspaces" \
    --ignore-not-found --wait=true --timeout=300s >/dev/null
  rm -f inventories/bare/coder-ca.crt
}

run() {
  local log=$1 t0=$SECONDS
  if ! env -u ANSIBLE_STRATEGY -u ANSIBLE_STRATEGY_PLUGINS bash scripts/lane.sh ansible-playbook site.yml \
    -i inventories/bare -e @testbed/on-testbed/common.yml -e @testbed/on-testbed/bare.yml >"$log" 2>&1; then
    tail -n 80 "$log" >&2
    say "FAILED: site.yml -i inventories/bare in the lane (log: $log)"
    return 1
  fi
  say "$(grep -E '^localhost +:' "$log") in $((SECONDS - t0))s"
}

logs=$(mktemp -d /tmp/coderstack-lane-converge.XXXXXX)
cleanup
trap cleanup EXIT
bash scripts/lane.sh ansible --version | head -n 1 >&2
say "converge from nothing"
run "$logs/converge.log"
say "re-run"
run "$logs/rerun.log"
if ! grep -qE '^localhost +: ok=[0-9]+ +changed=0 ' "$logs/rerun.log"; then
  grep -B3 -E '^changed:' "$logs/rerun.log" | tail -n 40 >&2
  say "FAILED: the re-run changed something (log: $logs/rerun.log)"
  exit 1
fi
say "the re-run changed nothing"
