#!/usr/bin/env bash
# All of coderstack's tests: ruff, ansible-lint, ansible-test sanity, molecule default (the whole site.yml from a
# cold testbed), pytest, the other molecule scenarios.
# Starts the testbed if it is not running and stops it again if it started it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$repo/.testbed/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
# This lane runs Ansible through Mitogen, configured as Mitogen documents (scripts/mitogen_env.sh); the tests that
# need plain `linear` drop the two variables themselves.
eval "$(bash scripts/mitogen_env.sh)"
say() { printf '\n[test %s] === %s ===\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

say "ruff"
ruff check .
ruff format --check .

say "ansible-lint (production profile)"
ansible-lint --profile production

# The committed collection as it ships (scripts/ansible_test_sanity.sh: a clone laid out as
# ansible_collections/coderstack/platform; its own venvs, built on the first run).
say "ansible-test sanity"
bash scripts/ansible_test_sanity.sh

# The current-Ansible lane (scripts/lane.sh: ansible-core 2.21 on Python 3.13 in a Debian 13 root): its unit tests and
# sanity here; pytest converges the shipped `bare` inventory in it, twice, on plain `linear`
# (tests/integration/inventories/test_shipped_inventories.py). The unit tests and sanity run beside molecule default,
# which mostly waits on the testbed; their lines follow it. (The lane's setup runs first, in the foreground: a cold
# one debootstraps on the host, and the host-state snapshot below must not see its transient mounts.)
say "the current-Ansible lane: unit tests and ansible-test sanity on ansible-core 2.21 / Python 3.13 (in the background)"
bash scripts/lane.sh --setup
lane_log=$(mktemp /tmp/coderstack-lane.XXXXXX.log)
(
  set -e
  bash scripts/lane.sh python -m pytest -ra tests/unit
  bash scripts/lane.sh bash scripts/ansible_test_sanity.sh
) >"$lane_log" 2>&1 &
lane_pid=$!
trap 'kill "$lane_pid" 2>/dev/null || true' EXIT

# The host as it is before any testbed runs: after the last testbed/down.sh, tests/integration/hoststate checks that
# the testbed put every interface, route, iptables chain, mount, /etc/hosts line and sysctl back.
snapshot=""
if ! bash testbed/status.sh >/dev/null 2>&1; then
  snapshot=$(mktemp /tmp/coderstack-host-before.XXXXXX.json)
  python tests/helpers/hoststate.py "$snapshot"
fi

# First the whole product from a cold testbed: molecule's create starts the testbed when it is not running
# (and destroy stops it again), converge runs site.yml, idempotence requires changed=0, verify checks it.
say "molecule default (site.yml on the testbed: converge, idempotence, verify)"
molecule test -s default

say "the current-Ansible lane: unit tests and ansible-test sanity (ran beside molecule default)"
lane_rc=0
wait "$lane_pid" || lane_rc=$?
cat "$lane_log" >&2
rm -f "$lane_log"
if [ "$lane_rc" != 0 ]; then
  say "FAILED: the current-Ansible lane's unit tests or sanity (exit $lane_rc; its lines above)"
  exit 1
fi

started=0
if ! bash testbed/status.sh >/dev/null 2>&1; then
  say "starting the testbed"
  bash testbed/up.sh
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash testbed/down.sh || true; fi; }
trap cleanup EXIT

say "pytest"
pytest -ra --durations=25 tests --ignore=tests/integration/hoststate

# The bench (python bench/run.py [--short]) is not part of CI: its figures come from full runs on a quiet machine, and
# its steps are the same playbooks and module pytest already runs; CI's 90 minutes go to the tests.

say "molecule (the other scenarios)"
for s in molecule/*/; do
  s=$(basename "$s")
  [ "$s" = default ] && continue
  molecule test -s "$s"
done

if [ -n "$snapshot" ]; then
  cleanup; started=0
  say "the host after testbed/down.sh is as before testbed/up.sh"
  CODERSTACK_HOST_SNAPSHOT=$snapshot pytest -ra tests/integration/hoststate
fi

say "all tests passed in $((SECONDS - t0))s"
