#!/bin/sh
# Install code-server VERSION from an npm registry into PREFIX (run inside the image build).
#   install-code-server.sh VERSION REGISTRY PREFIX
# code-server's npm package compiles its native modules at install time (nodedir=/usr: Debian's
# node headers, nothing is fetched from nodejs.org). Its @vscode/ripgrep dependency would download
# rg from GitHub; we seed that package's download cache with the distribution's ripgrep instead.
set -eu
version=$1 registry=$2 prefix=$3
work=$(mktemp -d)
cd "$work"
export npm_config_registry="$registry" npm_config_nodedir=/usr npm_config_update_notifier=false \
  npm_config_fund=false npm_config_audit=false
npm pack --silent "code-server@$version" >/dev/null
tar -xzf "code-server-$version.tgz" package/lib/vscode/npm-shrinkwrap.json
rg_pkg=$(node -p "require('./package/lib/vscode/npm-shrinkwrap.json').packages['node_modules/@vscode/ripgrep'].version")
npm pack --silent "@vscode/ripgrep@$rg_pkg" >/dev/null
tar -xzf "vscode-ripgrep-$rg_pkg.tgz" package/lib/postinstall.js
rg_release=$(sed -n "s/^const VERSION = '\(.*\)';.*/\1/p" package/lib/postinstall.js)
case $(uname -m) in
  x86_64) rg_target=x86_64-unknown-linux-musl ;;
  aarch64) rg_target=aarch64-unknown-linux-musl ;;
  *) echo "install-code-server.sh: no ripgrep mapping for $(uname -m)" >&2; exit 1 ;;
esac
rg_cache=$(node -p "require('os').tmpdir()")/vscode-ripgrep-cache-$rg_pkg
mkdir -p "$rg_cache"
tar -czf "$rg_cache/ripgrep-$rg_release-$rg_target.tar.gz" -C /usr/bin rg
echo "code-server $version: installing from $registry (native modules are compiled: a few minutes)"
# A local (not --global) install into $prefix/lib gives the same layout as a global one
# ($prefix/lib/node_modules/code-server), but its postinstall's own `npm install` of VS Code's dependencies then
# lands in lib/vscode/node_modules: under --global, npm_config_global is inherited and that nested install puts
# VS Code itself into the global prefix instead, leaving the workbench without its modules ("Cannot find module
# 'minimist'" on the first page load, while /healthz still answers).
# Debian's Node 18 headers declare N-API's newer "nogc" finalizer types, which the node-addon-api copies bundled by
# some of VS Code's modules (kerberos) predate: opt out of them, as Node documents, so those modules compile.
export CXXFLAGS="${CXXFLAGS:-} -DNODE_API_EXPERIMENTAL_NOGC_ENV_OPT_OUT"
npm install --unsafe-perm --no-package-lock --prefix "$prefix/lib" "./code-server-$version.tgz"
rm -f "$prefix/lib/package.json"
mkdir -p "$prefix/bin"
ln -sfn ../lib/node_modules/code-server/out/node/entry.js "$prefix/bin/code-server"
vscode="$prefix/lib/node_modules/code-server/lib/vscode"
for m in minimist node-pty @vscode/ripgrep; do
  [ -e "$vscode/node_modules/$m/package.json" ] || { echo "install-code-server.sh: VS Code's module $m is missing in $vscode/node_modules" >&2; exit 1; }
done
"$prefix/bin/code-server" --version
cd /
rm -rf "$work" "$rg_cache" /root/.npm /root/.cache
