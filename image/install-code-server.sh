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
npm install --global --unsafe-perm --prefix "$prefix" "./code-server-$version.tgz"
"$prefix/bin/code-server" --version
cd /
rm -rf "$work" "$rg_cache" /root/.npm /root/.cache
