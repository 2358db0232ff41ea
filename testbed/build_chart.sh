#!/usr/bin/env bash
# Package Coder's OFFICIAL Helm chart from the github.com/coder/coder/v2 module at $CODER_VERSION (the module zip
# carries helm/coder and helm/libcoder), once, into $cache/charts/coder-<version>.tgz, linked as
# $state/charts/coder.tgz. Same steps as Coder's release: `helm dependency build` (libcoder comes from
# file://../libcoder), `helm package --version X.Y.Z --app-version X.Y.Z` (the chart makes the image tag v<appVersion>).
# The testbed inventory installs this archive; real inventories install the same chart from its repository.
# Usage: testbed/build_chart.sh   (warm run: checks the cache, relinks)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

v=${CODER_VERSION#v}
out="$cache/charts/coder-$v.tgz"
if [ ! -s "$out" ]; then
  [ -x "$state/bin/helm" ] || die "$state/bin/helm is missing (testbed/build.sh helm)"
  probe="$cache/src/probe"; mkdir -p "$probe"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  moddir=$(cd "$probe" && go mod download -json "github.com/coder/coder/v2@$CODER_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -f "$moddir/helm/coder/Chart.yaml" ] || die "no helm/coder in the github.com/coder/coder/v2@$CODER_VERSION module ($moddir)"
  work="$cache/src/coder-chart-$v"
  rm -rf "$work" && mkdir -p "$work" "$cache/charts"
  # the module cache is read-only: work on a copy
  cp -r "$moddir/helm/coder" "$moddir/helm/libcoder" "$work/"
  chmod -R u+w "$work"
  "$state/bin/helm" dependency build "$work/coder" >"$work/dependency.log" 2>&1 \
    || { cat "$work/dependency.log" >&2; die "helm dependency build failed"; }
  "$state/bin/helm" package "$work/coder" --version "$v" --app-version "$v" --destination "$work" >/dev/null
  mv "$work/coder-$v.tgz" "$out"
  rm -rf "$work"
  log "packaged the official Coder chart $v: $out"
fi
mkdir -p "$state/charts"
ln -sfn "$out" "$state/charts/coder.tgz"
