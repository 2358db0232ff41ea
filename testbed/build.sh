#!/usr/bin/env bash
# Build the testbed's control-plane binaries from the Go module proxy, once, into a cache keyed by version:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, helm, kwok
# Usage: testbed/build.sh [all|kubernetes|etcd|helm|kwok]
# A warm run only checks the cache and relinks .testbed/bin (well under a second).
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want kubernetes; then
  kv=$KUBERNETES_VERSION
  sv="v0.${kv#v1.}"   # the k8s.io/* staging modules are published as v0.<minor>.<patch>
  probe="$cache/src/probe"; mkdir -p "$probe"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  modfile=$(cd "$probe" && go mod download -json "k8s.io/kubernetes@$kv" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  mapfile -t reps < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$modfile" | sort -u | awk -v v="$sv" '{print $1 " => " $1 " " v}')
  w="$cache/src/kubernetes-$kv"
  go_wrapper "$w" "k8s.io/kubernetes@$kv" "${reps[@]}"
  minor=${kv#v1.}; minor=${minor%%.*}
  ld=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$kv -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    go_binary "$c" "$kv" "$w" "k8s.io/kubernetes/cmd/$c" "$ld"
  done
fi

if want etcd; then
  w="$cache/src/etcd-$ETCD_VERSION"
  go_wrapper "$w" "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go_binary etcd "$ETCD_VERSION" "$w" go.etcd.io/etcd/server/v3
fi

if want helm; then
  w="$cache/src/helm-$HELM_VERSION"
  go_wrapper "$w" "helm.sh/helm/v3@$HELM_VERSION"
  go_binary helm "$HELM_VERSION" "$w" helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
fi

if want kwok; then
  w="$cache/src/kwok-$KWOK_VERSION"
  go_wrapper "$w" "sigs.k8s.io/kwok@$KWOK_VERSION"
  go_binary kwok "$KWOK_VERSION" "$w" sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
fi
log "control-plane binaries ready in $state/bin"
