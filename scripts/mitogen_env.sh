#!/usr/bin/env bash
# Prints the two settings that run Ansible through Mitogen, the way Mitogen documents it: ANSIBLE_STRATEGY_PLUGINS is
# the strategy directory of the installed ansible_mitogen package, ANSIBLE_STRATEGY its mitogen_linear. Modules then
# run in one persistent Python per target instead of a new process per task (bench/README.md: the re-run's figures
# with and without it).
#   eval "$(bash scripts/mitogen_env.sh)"             with .venv's Python (or: PYTHON=/path/to/python)
# Prints nothing (plain `linear`, which coderstack is built to be fast on too) when mitogen is not installed, or with
# CODERSTACK_MITOGEN=0. Nothing of Mitogen or Ansible is patched: this is only configuration.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
[ "${CODERSTACK_MITOGEN:-1}" = 0 ] && exit 0
[ -x "$python" ] || python=python3
dir=$("$python" -c 'import os, ansible_mitogen; print(os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"))' 2>/dev/null) || exit 0
[ -f "$dir/mitogen_linear.py" ] || exit 0
printf 'export ANSIBLE_STRATEGY_PLUGINS=%q ANSIBLE_STRATEGY=mitogen_linear\n' "$dir"
