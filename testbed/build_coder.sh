#!/usr/bin/env bash
# Build the Coder server (`coder`, AGPL edition, with the `server` subcommand) from the Go module proxy, once,
# into $cache/bin/coder-$CODER_VERSION, linked as $state/bin/coder.
#
# * coder/coder's go.mod carries replace directives (forks of tailscale, wireguard-go, ssh, pq, ...). `go build`
#   of a dependency ignores them, so the wrapper module repeats them: they are read from the downloaded .mod file
#   (single-line and `replace ( ... )` block forms; local-path replaces are skipped).
# * Web UI: site/ embeds site/out only with the `embed` build tag (site/site_embed.go); without it
#   (site/site_slim.go, `//go:build !embed`) the server serves a small "slim build" page and the API works.
#   So this is the "slim" build: no tags, no Node/pnpm, nothing to generate.
# * go.sum of the wrapper is seeded from coder/coder's own go.sum (see below).
# * CGO off (as upstream's scripts/build_go.sh does for release binaries).
# Usage: testbed/build_coder.sh   (warm run: only checks the cache and relinks .testbed/bin/coder)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

v=${CODER_VERSION:?CODER_VERSION missing in testbed/versions.env}
if [ ! -x "$cache/bin/coder-$v" ]; then
  probe="$cache/src/probe"; mkdir -p "$probe"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  modfile=$(cd "$probe" && go mod download -json "github.com/coder/coder/v2@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$modfile" ] || die "cannot download the go.mod of github.com/coder/coder/v2@$v"
  # "replace A => B vX" and, inside "replace ( ... )", "A => B vX"; skip "=> ./local" and "=> ../local".
  mapfile -t reps < <(awk '
    /^replace[ \t]*\(/ { blk = 1; next }
    blk && /^\)/ { blk = 0; next }
    { line = $0; sub(/\/\/.*/, "", line) }
    blk && line ~ /=>/ { print line; next }
    line ~ /^replace[ \t]+[^(]/ { sub(/^replace[ \t]+/, "", line); print line }
  ' "$modfile" | sed 's/^[ \t]*//; s/[ \t]*$//' | grep -v '=>[ \t]*\.' | sort -u)
  log "coder $v: repeating ${#reps[@]} replace directives from $modfile"
  w="$cache/src/coder-$v"
  go_wrapper "$w" "github.com/coder/coder/v2@$v" "${reps[@]}"
  # Some replaced forks (e.g. github.com/coder/pq) are unknown to the checksum database the proxy serves
  # ("verifying module: ... sum.golang.org/lookup/...: 404 Not Found"). coder/coder's own go.sum already pins
  # their hashes, and that file was itself verified as part of the coder module: seed the wrapper's go.sum from it.
  moddir=$(cd "$probe" && go mod download -json "github.com/coder/coder/v2@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -f "$moddir/go.sum" ] || die "no go.sum in $moddir"
  cat "$moddir/go.sum" "$w/go.sum" 2>/dev/null | sort -u >"$w/go.sum.new" && mv "$w/go.sum.new" "$w/go.sum"
fi
# buildinfo.tag is what /api/v2/buildinfo reports as version (otherwise "v0.0.0-devel").
go_binary coder "$v" "$cache/src/coder-$v" github.com/coder/coder/v2/cmd/coder \
  "-X github.com/coder/coder/v2/buildinfo.tag=${v#v}"
"$state/bin/coder" --version >/dev/null || die "built coder binary does not run"
log "coder $v ready: $state/bin/coder"
