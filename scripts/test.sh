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
# sanity here, its converge and re-run after pytest (scripts/lane_converge.sh)
say "the current-Ansible lane: unit tests and ansible-test sanity on ansible-core 2.21 / Python 3.13"
bash scripts/lane.sh --setup
bash scripts/lane.sh python -m pytest -ra tests/unit
bash scripts/lane.sh bash scripts/ansible_test_sanity.sh

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

say "the current-Ansible lane: site.yml -i inventories/bare converged and re-run on ansible-core 2.21, plain linear"
bash scripts/lane_converge.sh

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
