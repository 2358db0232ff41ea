#!/usr/bin/env bash
# The testbed's artifact mirror: what an air-gapped site serves its workspaces from an internal HTTP server
# (Artifactory, Nexus, nginx). Here: Python's http.server, read-only, on $TESTBED_NODE_IP:$TESTBED_MIRROR_PORT (the
# bridge: pods on the real node reach it, nothing beyond the machine does), serving $state/mirror:
#   ollama-linux-amd64.tgz (+ .sha256)   Ollama $OLLAMA_VERSION as its release asset is named, built by
#                                        testbed/build_ollama.sh
# $state/mirror-url holds the base URL (http://$TESTBED_NODE_IP:$TESTBED_MIRROR_PORT) for the testbed inventory, which
# opens this one address and port to the workspaces by name (namespaces_workspace_egress_extra) and gives the
# kubernetes-ollama template the archive's URL and sha256 (inventories/testbed/group_vars/all/templates.yml).
# Usage: svc_60_mirror.sh start|stop|status
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

port=$TESTBED_MIRROR_PORT
url="http://$TESTBED_NODE_IP:$port"
archive=ollama-linux-amd64.tgz

answers() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url/$archive.sha256")" = 200 ]; }

case ${1:-status} in
  start)
    src="$cache/artifacts/ollama-$OLLAMA_VERSION-linux-amd64.tgz"
    [ -s "$src" ] && [ -s "$src.sha256" ] || die "$src missing: run testbed/build_ollama.sh (scripts/setup.sh does)"
    mkdir -p "$state/mirror"
    ln -f "$src" "$state/mirror/$archive" 2>/dev/null || cp -f "$src" "$state/mirror/$archive"
    cp -f "$src.sha256" "$state/mirror/$archive.sha256"
    start_daemon mirror python3 -m http.server --bind "$TESTBED_NODE_IP" --directory "$state/mirror" "$port"
    wait_for "the mirror on $url" 30 answers || { tail -n 20 "$state/logs/mirror.log" >&2; die "the mirror does not answer on $url"; }
    echo "$url" >"$state/mirror-url"
    log "mirror serves $state/mirror on $url"
    ;;
  stop) stop_daemon mirror ;;
  status)
    if answers; then echo "mirror: $url"; else echo "mirror: not running"; exit 1; fi
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
