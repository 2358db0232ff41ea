#!/usr/bin/env bash
# The current-Ansible lane: coderstack's unit tests and ansible-test sanity on the Ansible a user gets today from
# `pip install ansible` (ansible-core 2.21, `ansible` 14; they need Python >= 3.12, and this machine's Python 3.11
# stops at the ansible-core 2.19 of requirements.txt), run on Python 3.13 in a Debian 13 (trixie) root:
#   bash scripts/lane.sh --setup          build the root and its venv (cached; a second run is a no-op)
#   bash scripts/lane.sh <command...>     run a command in the root, e.g.
#       bash scripts/lane.sh python -m pytest -q tests/unit
#       bash scripts/lane.sh bash scripts/ansible_test_sanity.sh
#
# The root: `debootstrap --variant=minbase trixie` into $CODERSTACK_CACHE/lanes/trixie (~/.cache/coderstack), with
# a venv /opt/coderstack-venv (inside the root) holding requirements.txt and requirements-dev.txt with the pins of
# requirements-lane.txt in place of theirs (ansible-core, ansible); rebuilt when that list changes (sha256 stamp,
# as scripts/setup.sh does for .venv). ansible-test's tool venv is /opt/coderstack-venv-ansible-test in the root
# (scripts/ansible_test_sanity.sh --setup; the host's .venv-ansible-test stays the 2.19 lane's).
#
# A command runs as root, chrooted, in a mount namespace of its own (unshare -m, private propagation): the repo is
# bind-mounted at the same absolute path (so .testbed/kubeconfig and the like resolve), with /proc, /sys, /dev (and
# /dev/pts, /dev/shm), the host's /etc/resolv.conf and /etc/hosts (the testbed adds lines to it), and the cache's
# bin/ and charts/ read-only (the testbed's tools and charts link there). The mounts exist
# only in that namespace: they vanish when the command ends, however it ends, and concurrent calls do not see each
# other's. The network is the host's, so the testbed's API server and hosts are reachable. The command runs in the
# repo with the venv first on PATH, HOME=/root of the root (its own ~/.ansible), ANSIBLE_CONFIG=<repo>/ansible.cfg,
# and only these host variables: CI, ANSIBLE_* (ANSIBLE_STRATEGY_PLUGINS, set by scripts/mitogen_env.sh to the
# host venv's Mitogen, becomes the lane venv's), CODERSTACK_*, KUBECONFIG, PYTEST_ADDOPTS, TERM, pip's index settings
# (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, PIP_DEFAULT_TIMEOUT, PIP_RETRIES; not the ones naming host
# files, such as PIP_FIND_LINKS or PIP_CERT: pip in the root trusts the root's CAs, which include the host's extra
# ones) and the proxy variables.
#
# Needs root (debootstrap, chroot, mounts). Env: CODERSTACK_CACHE (~/.cache/coderstack), CODERSTACK_DEBIAN_MIRROR
# (http://deb.debian.org/debian).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[lane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

suite=trixie
mirror=${CODERSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache="${CODERSTACK_CACHE:-$HOME/.cache/coderstack}"
lanes="$cache/lanes"
root="$lanes/$suite"
venv=/opt/coderstack-venv                      # inside the root
tools=/opt/coderstack-venv-ansible-test        # inside the root: ansible-test's tool venv for this lane
reqs=/opt/coderstack-venv.requirements.txt     # inside the root: the merged list the venv was built from
# What the root holds besides minbase: Python and its venv module, the CAs pip needs, git (ansible-test lists the
# collection's files with it; the sanity script clones the repo), podman (the base_image role's builder, which the
# preflight requires on the control host; the lane's converge finds the image in the registry and builds nothing)
PACKAGES=(python3 python3-venv ca-certificates git podman)
root_stamp="$root/.coderstack-lane"            # written last by a complete debootstrap
venv_stamp="$root$venv/.requirements.sha256"   # written last by a complete venv build

# requirements.txt and requirements-dev.txt, each package that requirements-lane.txt pins replaced by that pin
# (pip refuses two pins of one package, so requirements-lane.txt cannot just include the others). Names compare
# as pip does (case-insensitive, `-`, `_` and `.` alike); comments, blank lines and `-r` includes are dropped.
merged_requirements() {
  awk '
    function name(l) {
      sub(/[ \t]*#.*/, "", l); gsub(/^[ \t]+|[ \t]+$/, "", l)
      if (l == "" || l ~ /^-/) return ""
      sub(/[ \t<>=!~;@\[].*/, "", l); l = tolower(l); gsub(/[-_.]+/, "-", l)
      return l
    }
    FILENAME != file { file = FILENAME; n_file++ }
    { n = name($0) }
    n == "" { next }
    n_file == 1 { lane[n] = 1; print; next }
    !(n in lane) { print }
  ' "$repo/requirements-lane.txt" "$repo/requirements.txt" "$repo/requirements-dev.txt"
}

# Mounts under the root that are visible here: a leftover from a crashed run outside a namespace would make a
# `rm -rf` of the root delete the host's files, so nothing is removed while there is one.
mounted_under() { findmnt -rn -o TARGET | awk -v r="$1" 'index($0, r "/") == 1 || $0 == r' | grep -q .; }

# The repo is a safe.directory for git in the root (git refuses a work tree owned by another uid; here both are
# root, but a CI checkout may not be).
trust_repo() {
  local cfg="$root/etc/gitconfig"
  git config --file "$cfg" --get-all safe.directory 2>/dev/null | grep -qxF "$repo" \
    || git config --file "$cfg" --add safe.directory "$repo"
}

# The host's extra CAs (/usr/local/share/ca-certificates: e.g. a proxy's) are the root's too: pip reaches PyPI
# through the same network.
sync_cas() {
  local src=/usr/local/share/ca-certificates dst="$root/usr/local/share/ca-certificates/coderstack-host"
  [ -d "$src" ] || return 0
  mkdir -p "$dst"
  if ! diff -rq "$src" "$dst" >/dev/null 2>&1; then
    rm -rf "$dst" && mkdir -p "$dst"
    cp -a "$src"/. "$dst"/
    run_in_root update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in $root"
  fi
}

build_root() {
  local want new="$root.new" t0=$SECONDS
  want="$suite $mirror ${PACKAGES[*]}"
  if [ "$(cat "$root_stamp" 2>/dev/null)" = "$want" ]; then
    say "root $root present ($suite)"
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  for d in "$new" "$root"; do
    if mounted_under "$d"; then die "something is mounted under $d (findmnt): unmount it first"; fi
  done
  rm -rf --one-file-system "$new"
  mkdir -p "$new"
  say "debootstrap --variant=minbase $suite from $mirror (+ ${PACKAGES[*]})"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" "$suite" "$new" "$mirror" \
    >"$lanes/debootstrap-$suite.log" 2>&1 \
    || { tail -n 30 "$lanes/debootstrap-$suite.log" >&2; die "debootstrap failed (log: $lanes/debootstrap-$suite.log)"; }
  cat >"$new/etc/apt/sources.list" <<SRC
deb $mirror $suite main
deb $mirror $suite-updates main
deb ${mirror%/debian}/debian-security $suite-security main
SRC
  rm -rf "$new"/var/cache/apt/archives/*.deb
  # bind-mount targets: regular files (a symlink would be followed out of the root)
  rm -f "$new/etc/resolv.conf" "$new/etc/hosts"
  touch "$new/etc/resolv.conf" "$new/etc/hosts"
  echo "$want" >"$new/.coderstack-lane"
  rm -rf --one-file-system "$root"
  mv "$new" "$root"
  say "root built in $((SECONDS - t0))s"
}

build_venv() {
  local want t0=$SECONDS
  want=$(merged_requirements | sha256sum | cut -d' ' -f1)
  if [ -x "$root$venv/bin/python" ] && [ "$(cat "$venv_stamp" 2>/dev/null)" = "$want" ]; then
    say "venv $venv present (requirements unchanged)"
    return
  fi
  say "creating $venv in the root (requirements.txt, requirements-dev.txt, requirements-lane.txt's pins)"
  merged_requirements >"$root$reqs"
  rm -rf --one-file-system "${root:?}$venv"
  run_in_root python3 -m venv "$venv"
  run_in_root "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs"
  echo "$want" >"$venv_stamp"
  say "venv built in $((SECONDS - t0))s"
}

setup() {
  local t0=$SECONDS
  mkdir -p "$lanes"
  # one setup at a time (fd 9 is not passed to the commands run_in_root starts)
  exec 9>"$lanes/$suite.lock"
  flock 9
  build_root
  trust_repo
  sync_cas
  build_venv
  # ansible-test's tool venv and its offline get-pip stand-in (the environment run_in_root sets selects this lane's)
  run_in_root bash scripts/ansible_test_sanity.sh --setup
  say "setup done in $((SECONDS - t0))s"
}

# Runs "$@" in the root, through this script in a new private mount namespace (--in-namespace below).
run_in_root() { unshare --mount --propagation private -- bash "$repo/scripts/lane.sh" --in-namespace "$@" 9>&-; }

# Inside the namespace: mount, then replace this shell with the command, chrooted, in a clean environment.
in_namespace() {
  local pyver here parent
  # never in the caller's mount namespace (these mounts would stay there): run_in_root's unshare made a new one
  here=$(readlink /proc/self/ns/mnt) && parent=$(readlink "/proc/$PPID/ns/mnt") && [ -n "$here" ] \
    && [ "$here" != "$parent" ] || die "--in-namespace is internal: run bash scripts/lane.sh <command...>"
  mount --rbind /dev "$root/dev"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mkdir -p "$root$repo"
  mount --bind "$repo" "$root$repo"
  # the testbed's binaries and charts are symlinks into the cache (testbed/build*.sh): the same paths, read-only
  local cached
  for cached in "$cache/bin" "$cache/charts"; do
    [ -d "$cached" ] || continue
    mkdir -p "$root$cached"
    mount --bind "$cached" "$root$cached"
    mount -o remount,bind,ro "$root$cached"
  done
  mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
  mount --bind /etc/hosts "$root/etc/hosts"
  pyver=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  local -a envs=(
    HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8
    PATH="$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" VIRTUAL_ENV="$venv"
  )
  local v d
  while IFS= read -r v; do
    case "$v" in
      ANSIBLE_STRATEGY_PLUGINS) ;; # a directory of the host's venv (scripts/mitogen_env.sh): the lane's, below
      CI | ANSIBLE_* | CODERSTACK_* | KUBECONFIG | PYTEST_ADDOPTS | TERM | PIP_INDEX_URL | PIP_EXTRA_INDEX_URL | \
        PIP_TRUSTED_HOST | PIP_DEFAULT_TIMEOUT | PIP_RETRIES | http_proxy | https_proxy | no_proxy | HTTP_PROXY | \
        HTTPS_PROXY | NO_PROXY) envs+=("$v=${!v}") ;;
    esac
  done < <(compgen -e)
  if [ -n "${ANSIBLE_STRATEGY_PLUGINS:-}" ]; then
    # Mitogen as scripts/mitogen_env.sh configures it on the host, from the lane venv's ansible_mitogen
    for d in "$root$venv"/lib/python3*/site-packages/ansible_mitogen/plugins/strategy; do
      if [ -f "$d/mitogen_linear.py" ]; then envs+=(ANSIBLE_STRATEGY_PLUGINS="${d#"$root"}"); fi
    done
  fi
  envs+=(
    ANSIBLE_CONFIG="$repo/ansible.cfg"
    # scripts/ansible_test_sanity.sh in this lane: its Python, its tool venv, the file with its ansible-core pin
    CODERSTACK_SANITY_PYTHON="$pyver" CODERSTACK_SANITY_TOOLS="$tools"
    CODERSTACK_SANITY_REQUIREMENTS="$repo/requirements-lane.txt"
    # Python 3.13's bytecode stays in the root, not in the repo's __pycache__ directories
    PYTHONPYCACHEPREFIX=/root/.cache/pycache
  )
  exec chroot "$root" /usr/bin/env -i -C "$repo" "${envs[@]}" "$@"
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
case "${1:-}" in
  "")
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
  --setup)
    setup
    ;;
  --in-namespace)
    shift
    in_namespace "$@"
    ;;
  *)
    [ -f "$root_stamp" ] || die "no lane root at $root: run bash scripts/lane.sh --setup"
    want=$(merged_requirements | sha256sum | cut -d' ' -f1)
    [ "$(cat "$venv_stamp" 2>/dev/null)" = "$want" ] \
      || die "the lane's venv does not match requirements*.txt: run bash scripts/lane.sh --setup"
    trust_repo
    run_in_root "$@"
    ;;
esac
