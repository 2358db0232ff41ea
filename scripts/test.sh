#!/usr/bin/env bash
# All of coderstack's tests, in the order that fails fastest: ruff, ansible-lint, pytest, molecule.
# Starts the testbed if it is not running and stops it again if it started it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$repo/.testbed/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
say() { printf '\n[test %s] === %s ===\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

say "ruff"
ruff check .
ruff format --check .

say "ansible-lint (production profile)"
ansible-lint --profile production

started=0
if ! bash testbed/status.sh >/dev/null 2>&1; then
  say "starting the testbed"
  bash testbed/up.sh
  started=1
fi
cleanup() { if [ "$started" = 1 ]; then bash testbed/down.sh || true; fi; }
trap cleanup EXIT

say "pytest"
pytest -ra tests

say "bench (short mode: checks that it runs; figures in bench/results.json)"
python bench/run.py --short --output "$repo/.testbed/bench-short.json"

say "molecule"
for s in molecule/*/; do
  s=$(basename "$s")
  [ "$s" = default ] && continue
  molecule test -s "$s"
done
molecule test -s default

say "all tests passed in $((SECONDS - t0))s"
