# Shared helpers for the testbed scripts (sourced, not run).
# Paths:
#   repo   the coderstack checkout
#   cache  ${CODERSTACK_CACHE:-~/.cache/coderstack}: built binaries (bin/<name>-<version>), Go wrapper modules (src/)
#   state  ${CODERSTACK_TESTBED_DIR:-<repo>/.testbed}: everything a running testbed owns (certs, data, logs, pids,
#          kubeconfig, bin/ links to the cached binaries); down.sh --purge removes it
testbed_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$testbed_here/.." && pwd)
# shellcheck source=testbed/versions.env
. "$testbed_here/versions.env"
cache=${CODERSTACK_CACHE:-$HOME/.cache/coderstack}
state=${CODERSTACK_TESTBED_DIR:-$repo/.testbed}
mkdir -p "$cache/bin" "$cache/src" "$state/bin"

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# go_wrapper DIR MODULE@VERSION [REPLACE...]: a throwaway module under the cache that requires
# MODULE@VERSION, repeating the replace directives the module itself declares (go install ignores them).
go_wrapper() {
  local dir=$1 modver=$2; shift 2
  mkdir -p "$dir"
  if [ ! -f "$dir/.ok" ]; then
    rm -f "$dir/go.mod" "$dir/go.sum"
    (cd "$dir" && go mod init coderstack.local/wrapper >/dev/null 2>&1)
    local r
    for r in "$@"; do echo "replace $r" >>"$dir/go.mod"; done
    log "resolving $modver (downloads modules on a cold cache)"
    (cd "$dir" && GOFLAGS=-mod=mod go get "$modver" >/dev/null 2>"$dir/get.log") || { cat "$dir/get.log" >&2; die "go get $modver failed"; }
    touch "$dir/.ok"
  fi
}

# go_binary NAME VERSION WRAPPERDIR PACKAGE [LDFLAGS] [TAGS]: build once into $cache/bin/NAME-VERSION,
# link it as $state/bin/NAME.
go_binary() {
  local name=$1 version=$2 dir=$3 pkg=$4 ldflags=${5:-} tags=${6:-}
  local out="$cache/bin/$name-$version"
  if [ ! -x "$out" ]; then
    log "building $name $version from $pkg (cold build: a few minutes)"
    local t0=$SECONDS
    (cd "$dir" && CGO_ENABLED=${CGO_ENABLED:-0} GOFLAGS=-buildvcs=false \
      go build -mod=mod -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg" 2>"$dir/build-$name.log") \
      || { tail -n 40 "$dir/build-$name.log" >&2; die "building $name failed (full log: $dir/build-$name.log)"; }
    mv "$out.tmp" "$out"
    log "built $name $version in $((SECONDS - t0))s"
  fi
  ln -sfn "$out" "$state/bin/$name"
}

# Loopback ports of the testbed's services (all bound to 127.0.0.1 only).
TESTBED_ETCD_PORT=${TESTBED_ETCD_PORT:-12379}
TESTBED_ETCD_PEER_PORT=${TESTBED_ETCD_PEER_PORT:-12380}
TESTBED_APISERVER_PORT=${TESTBED_APISERVER_PORT:-16443}
TESTBED_POSTGRES_PORT=${TESTBED_POSTGRES_PORT:-15432}
TESTBED_CODER_PORT=${TESTBED_CODER_PORT:-13000}
TESTBED_REGISTRY_PORT=${TESTBED_REGISTRY_PORT:-15000}
TESTBED_MIRROR_PORT=${TESTBED_MIRROR_PORT:-15080}  # on the node IP: the artifact mirror (svc_60_mirror.sh)
export TESTBED_ETCD_PORT TESTBED_ETCD_PEER_PORT TESTBED_APISERVER_PORT TESTBED_POSTGRES_PORT TESTBED_CODER_PORT TESTBED_REGISTRY_PORT \
  TESTBED_MIRROR_PORT

# The testbed's own network (testbed/net.sh): a bridge on the host whose address is the real node's IP. Pods live
# in TESTBED_POD_CIDR on that bridge; what pods must reach (kube-apiserver, registry, PostgreSQL) listens on
# TESTBED_NODE_IP. Nothing on it is routed beyond the machine (net.sh drops every forwarded packet that does not
# stay on the bridge). kwok's simulated pods get addresses in TESTBED_KWOK_CIDR, which is unreachable from the host.
TESTBED_BRIDGE=${TESTBED_BRIDGE:-cstb0}
TESTBED_NET_PREFIX=${TESTBED_NET_PREFIX:-10.85.0}
TESTBED_NODE_IP=$TESTBED_NET_PREFIX.1
TESTBED_POD_CIDR=$TESTBED_NET_PREFIX.0/24
TESTBED_SERVICE_CIDR=${TESTBED_SERVICE_CIDR:-10.96.0.0/16}
TESTBED_KWOK_CIDR=${TESTBED_KWOK_CIDR:-10.244.0.0/16}
TESTBED_API_SERVICE_IP=10.96.0.1
TESTBED_DNS_IP=${TESTBED_DNS_IP:-10.96.0.10}
TESTBED_INGRESS_IP=${TESTBED_INGRESS_IP:-10.96.0.80}
# The DNS zone the testbed answers for (CoreDNS in the cluster, marked /etc/hosts lines on the host).
TESTBED_DOMAIN_ZONE=${TESTBED_DOMAIN_ZONE:-testbed.local}
# The real node (kubelet + containerd + kube-proxy, testbed/svc_40_node.sh).
TESTBED_NODE_NAME=${TESTBED_NODE_NAME:-testbed-real-1}
TESTBED_REGISTRY="$TESTBED_NODE_IP:$TESTBED_REGISTRY_PORT"
export TESTBED_BRIDGE TESTBED_NODE_IP TESTBED_POD_CIDR TESTBED_SERVICE_CIDR TESTBED_KWOK_CIDR TESTBED_DNS_IP \
  TESTBED_INGRESS_IP TESTBED_DOMAIN_ZONE TESTBED_NODE_NAME TESTBED_REGISTRY

# running PID: the process exists and is not a zombie (a daemon killed with SIGKILL stays one until its reaper, not
# always prompt, collects it: `kill -0` alone would call it running)
running() {
  local state_of
  kill -0 "$1" 2>/dev/null || return 1
  state_of=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ "$state_of" != Z ]
}

# start_daemon NAME CMD...: run CMD in the background, logs in $state/logs/NAME.log, pid in $state/pids/NAME.pid
start_daemon() {
  local name=$1; shift
  mkdir -p "$state/logs" "$state/pids"
  if [ -f "$state/pids/$name.pid" ] && running "$(cat "$state/pids/$name.pid")"; then
    log "$name already running (pid $(cat "$state/pids/$name.pid"))"; return 0
  fi
  setsid "$@" >>"$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$state/pids/$name.pid"
  log "started $name (pid $!, log $state/logs/$name.log)"
}

# stop_daemon NAME: TERM, then KILL after 10 s
stop_daemon() {
  local name=$1 pidf="$state/pids/$1.pid" pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if running "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$pidf"
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.2 s, saying what it waits for; on timeout print the log tail
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) next=$((SECONDS + 5))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    if [ $SECONDS -ge $next ]; then log "still waiting for $what"; next=$((SECONDS + 5)); fi
    sleep 0.2
  done
}
