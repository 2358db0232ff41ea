#!/usr/bin/env bash
# Build the testbed's in-cluster network pieces from the Go module proxy, once, into a cache keyed by version:
#
#   $cache/bin/traefik-$TRAEFIK_VERSION   ingress controller (kubernetesingress provider), linked as $state/bin/traefik
#   $cache/bin/coredns-$COREDNS_VERSION   cluster DNS (kubernetes + template plugins), linked as $state/bin/coredns
#   $cache/bin/kube-router-$KUBE_ROUTER_VERSION   NetworkPolicy enforcer (iptables + ipset; the one k3s embeds), run
#       by svc_40_node.sh with only its firewall controller: the bridge CNI plugin enforces no NetworkPolicy
#
# All are static (CGO off, -s -w) so the images can be `FROM scratch` (testbed/images/{traefik,coredns}).
#
# * Traefik: github.com/traefik/traefik/v3's go.mod has three non-local `replace` lines (forks of go-http-auth, mux,
#   minheap) and one `exclude` (tencentcloud-sdk-go v3.0.83+incompatible: "ambiguous import" otherwise). `go build`
#   of a dependency ignores both, so the wrapper module repeats them (lib.sh's go_wrapper only knows replaces, hence
#   wrapper_with_directives below). `go get` must name the package (.../cmd/traefik@vX), not only the module, or
#   go.sum lacks entries for the packages cmd/traefik imports. The web UI assets are not in the module (webui/static
#   holds only a placeholder): run it without the API (no --api.* flag at all; see testbed/manifests/traefik.yaml).
#   Version ldflag as upstream's Makefile/goreleaser: pkg/version.Version without the leading "v" (what `traefik
#   version` prints for a release); Codename stays the source default.
# * CoreDNS: the module root is the main package and its go.mod has no replace lines: lib.sh's go_wrapper suffices.
#   coremain.CoreVersion is a constant (already 1.x.y); the Makefile only sets coremain.GitCommit, which release
#   binaries print as a short commit hash: taken from the proxy's .info (Origin.Hash), else the tag.
#
# Usage: testbed/build_net.sh [all|traefik|coredns|kube-router]   (warm run: only checks the cache and relinks .testbed/bin)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

traefik_v=${TRAEFIK_VERSION:?TRAEFIK_VERSION missing in testbed/versions.env}
coredns_v=${COREDNS_VERSION:?COREDNS_VERSION missing in testbed/versions.env}
router_v=${KUBE_ROUTER_VERSION:?KUBE_ROUTER_VERSION missing in testbed/versions.env}
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

# mod_download_field MODULE@VERSION FIELD: one string field of `go mod download -json` (GoMod, Dir, Hash, ...)
mod_download_field() {
  local probe="$cache/src/probe"
  mkdir -p "$probe"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  (cd "$probe" && go mod download -json "$1") | sed -n "s/.*\"$2\": \"\(.*\)\".*/\1/p" | head -n 1
}

# module_directives MODULE@VERSION: that module's non-local replace directives and its exclude directives, one per
# line as go.mod lines ("replace A => B vX", "exclude C vY"); single-line and block forms; "=> ./local" skipped.
module_directives() {
  local modfile
  modfile=$(mod_download_field "$1" GoMod)
  [ -f "$modfile" ] || die "cannot download the go.mod of $1"
  awk '
    { line = $0; sub(/\/\/.*/, "", line); gsub(/^[ \t]+|[ \t]+$/, "", line) }
    blk && line ~ /^\)/ { blk = ""; next }
    blk && line != "" { print blk " " line; next }
    line ~ /^(replace|exclude)[ \t]*\($/ { blk = substr(line, 1, 7); next }
    line ~ /^(replace|exclude)[ \t]+/ { print line }
  ' "$modfile" | grep -v '=>[ \t]*\.' | sort -u || true
}

# wrapper_with_directives DIR GET_TARGET DIRECTIVE...: like lib.sh's go_wrapper, but takes whole go.mod directive
# lines (replace and exclude) and `go get`s GET_TARGET (a package@version).
wrapper_with_directives() {
  local dir=$1 target=$2 d; shift 2
  mkdir -p "$dir"
  [ -f "$dir/.ok" ] && return 0
  rm -f "$dir/go.mod" "$dir/go.sum"
  (cd "$dir" && go mod init coderstack.local/wrapper >/dev/null 2>&1)
  for d in "$@"; do echo "$d" >>"$dir/go.mod"; done
  log "resolving $target (downloads modules on a cold cache)"
  (cd "$dir" && GOFLAGS=-mod=mod go get "$target" >/dev/null 2>"$dir/get.log") || { cat "$dir/get.log" >&2; die "go get $target failed"; }
  touch "$dir/.ok"
}

if want traefik; then
  w="$cache/src/traefik-$traefik_v"
  if [ ! -x "$cache/bin/traefik-$traefik_v" ]; then
    mapfile -t dirs < <(module_directives "github.com/traefik/traefik/v3@$traefik_v")
    log "traefik $traefik_v: repeating ${#dirs[@]} replace/exclude directives"
    wrapper_with_directives "$w" "github.com/traefik/traefik/v3/cmd/traefik@$traefik_v" "${dirs[@]}"
  fi
  go_binary traefik "$traefik_v" "$w" github.com/traefik/traefik/v3/cmd/traefik \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=${traefik_v#v}"
fi

if want coredns; then
  w="$cache/src/coredns-$coredns_v"
  ld=""
  if [ ! -x "$cache/bin/coredns-$coredns_v" ]; then
    go_wrapper "$w" "github.com/coredns/coredns@$coredns_v"
    commit=$(mod_download_field "github.com/coredns/coredns@$coredns_v" Hash)
    ld="-X github.com/coredns/coredns/coremain.GitCommit=${commit:0:7}"
    [ -n "$commit" ] || ld="-X github.com/coredns/coredns/coremain.GitCommit=$coredns_v"
  fi
  go_binary coredns "$coredns_v" "$w" github.com/coredns/coredns "$ld"
fi
# * kube-router: cmd/kube-router is the main package (`go get` names it). Its firewall controller is the NetworkPolicy
#   enforcer k3s embeds. kube-network-policies (kind's) was tried first: it needs the kernel's nft `queue` expression,
#   which this kernel lacks (`nft add rule inet t c queue num 98 bypass` -> "No such file or directory").
if want kube-router; then
  w="$cache/src/kube-router-$router_v"
  go_wrapper "$w" "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$router_v"
  go_binary kube-router "$router_v" "$w" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$router_v"
fi
log "network binaries ready in $state/bin (traefik $traefik_v, coredns $coredns_v, kube-router $router_v)"
