#!/usr/bin/env bash
# The Coder server (built by testbed/build_coder.sh) on http://127.0.0.1:$TESTBED_CODER_PORT, against the testbed's
# PostgreSQL (svc_20_postgres.sh). Leaves $state/coder-url; data/cache/config under $state/coder.
#
# Nothing leaves the machine: telemetry, update check, STUN and the default GitHub OAuth provider are off, and
# CODER_ACCESS_URL is set (so no *.try.coder.app tunnel).
# Terraform: Coder's built-in provisioner uses the `terraform` found on PATH ($state/bin first) when its version is
# >= 1.1.0 (v2.24.x warns above 1.12.9, and would DOWNLOAD 1.12.2 from releases.hashicorp.com when none is found
# or it is older than 1.1.0; there is no flag to stop that). So without $state/bin/terraform this script starts
# Coder with CODER_PROVISIONER_DAEMONS=0 (API works, template builds wait) and says so; run it again (stop+start)
# once terraform is there. $state/terraformrc, when present, is exported as TF_CLI_CONFIG_FILE (provider mirror).
# Usage: testbed/svc_30_coder.sh start|stop|status|restart
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

port=$TESTBED_CODER_PORT
url="http://127.0.0.1:$port"
home="$state/coder"
healthy() { curl -fsS -m 2 "$url/healthz" >/dev/null 2>&1; }
# stops the wait early when the server process is gone
healthy_or_dead() { healthy || ! kill -0 "$(cat "$state/pids/coder.pid" 2>/dev/null || echo 0)" 2>/dev/null; }

start() {
  [ -x "$state/bin/coder" ] || bash "$testbed_here/build_coder.sh"
  [ -s "$state/postgres-url" ] || die "no $state/postgres-url: start PostgreSQL first (testbed/svc_20_postgres.sh start)"
  if healthy; then log "Coder already answers on $url"; echo "$url" >"$state/coder-url"; return 0; fi
  mkdir -p "$home/cache" "$home/config" "$home/home" "$home/work"
  local daemons=3
  if [ -x "$state/bin/terraform" ]; then
    log "Coder provisioners use $("$state/bin/terraform" version 2>/dev/null | head -n 1) ($state/bin/terraform)"
  else
    daemons=0
    log "WARNING: no $state/bin/terraform: Coder starts without provisioner daemons (no template builds)," \
      "so it never tries to download Terraform; restart it once terraform is built"
  fi
  local tfrc=()
  [ -f "$state/terraformrc" ] && tfrc=(TF_CLI_CONFIG_FILE="$state/terraformrc")
  start_daemon coder env -i \
    PATH="$state/bin:/usr/local/bin:/usr/bin:/bin" HOME="$home/home" LANG=C.UTF-8 "${tfrc[@]}" \
    CODER_PG_CONNECTION_URL="$(cat "$state/postgres-url")" \
    CODER_HTTP_ADDRESS="127.0.0.1:$port" \
    CODER_ACCESS_URL="$url" \
    CODER_TELEMETRY_ENABLE=false \
    CODER_UPDATE_CHECK=false \
    CODER_DERP_SERVER_STUN_ADDRESSES=disable \
    CODER_OAUTH2_GITHUB_DEFAULT_PROVIDER_ENABLE=false \
    CODER_CACHE_DIRECTORY="$home/cache" \
    CODER_CONFIG_DIR="$home/config" \
    CODER_PROVISIONER_DAEMONS="$daemons" \
    "$state/bin/coder" server
  # a cold start runs the database migrations (~30-60 s on 2 busy cores)
  wait_for "Coder /healthz on $url" 240 healthy_or_dead
  healthy || { tail -n 40 "$state/logs/coder.log" >&2; die "Coder did not become healthy (log $state/logs/coder.log)"; }
  echo "$url" >"$state/coder-url"
  log "Coder $(curl -fsS "$url/api/v2/buildinfo" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p') ready on $url"
}

case ${1:-status} in
  start) start ;;
  stop) stop_daemon coder ;;
  restart) stop_daemon coder; start ;;
  status)
    if healthy; then echo "coder: running on $url"; else echo "coder: stopped"; exit 1; fi
    ;;
  *) die "usage: $0 start|stop|status|restart" ;;
esac
