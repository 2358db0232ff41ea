#!/usr/bin/env bash
# The images the testbed's real node runs, built here (no image can be pulled) and pushed to the testbed registry
# as $TESTBED_REGISTRY/coderstack-testbed/<name>:<tag>:
#   pause     the pod sandbox (a static C program, FROM scratch)           containerd's sandbox_image
#   postgres  Debian's PostgreSQL with the official image's env contract     the postgres role (incluster)
#   coder     Coder (dashboard, agent) built from its Go module, OpenTofu, providers  the official Coder chart
#   coredns   CoreDNS built from its Go module                              cluster DNS (svc_50_addons.sh)
#   traefik   Traefik v3 built from its Go module                           the ingress controller (svc_50_addons.sh)
# Each image is keyed by a hash of its inputs (testbed/images/<name>/, the versions of the binaries it takes, the
# base image's ID): a build happens only when that hash has no local image yet (podman's storage is the cache),
# a push only when the registry has not received that hash yet ($state/images/<name>.pushed).
# Usage: svc_30_images.sh start [NAME...] | stop | status | ref NAME
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

export CONTAINERS_CONF="$state/containers/containers.conf"
src="$testbed_here/images"
work="$state/images"
base=localhost/coderstack-base:bookworm
all=(pause postgres coder coredns traefik)

tag_of() {
  case $1 in
    pause) echo 1 ;;
    postgres) echo 15 ;;
    coder) echo "$CODER_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    traefik) echo "$TRAEFIK_VERSION" ;;
  esac
}
ref() { echo "$TESTBED_REGISTRY/coderstack-testbed/$1:$(tag_of "$1")"; }

# inputs NAME: what goes into the hash besides testbed/images/NAME/ (binaries are cached per version: their
# version is their identity)
inputs() {
  case $1 in
    pause) gcc --version | head -n 1 ;;
    postgres) podman image inspect --format '{{.Id}}' "$base" ;;
    coder) podman image inspect --format '{{.Id}}' "$base"
      echo "coder-embed-$CODER_VERSION coder-agent-$CODER_VERSION tofu-$TOFU_VERSION coder-provider-$TF_PROVIDER_CODER_VERSION kubernetes-provider-$TF_PROVIDER_KUBERNETES_VERSION" ;;
    coredns) echo "coredns-$COREDNS_VERSION" ;;
    traefik) echo "traefik-$TRAEFIK_VERSION" ;;
  esac
}

hash_of() {
  { (cd "$src/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); inputs "$1"; } | sha256sum | cut -c1-16
}

need_bin() { [ -x "$1" ] || die "$1 is missing: run scripts/setup.sh (it builds the testbed binaries)"; }

# context NAME DIR: fill the build context with the binaries the Containerfile copies
context() {
  local name=$1 dir=$2
  cp -a "$src/$name/." "$dir/"
  case $name in
    pause) gcc -static -Os -s -o "$dir/pause" "$src/pause/pause.c" ;;
    coder)
      need_bin "$cache/bin/coder-embed-$CODER_VERSION"; need_bin "$cache/bin/coder-agent-$CODER_VERSION"
      need_bin "$cache/bin/tofu-$TOFU_VERSION"
      cp "$cache/bin/coder-embed-$CODER_VERSION" "$dir/coder"
      cp "$cache/bin/coder-agent-$CODER_VERSION" "$dir/coder-agent"
      cp "$cache/bin/tofu-$TOFU_VERSION" "$dir/terraform"
      # OpenTofu resolves "coder/coder" and "hashicorp/kubernetes" on registry.opentofu.org: that host's part
      mkdir -p "$dir/terraform-mirror"
      cp -rL "$cache/terraform-mirror/registry.opentofu.org" "$dir/terraform-mirror/"
      ;;
    coredns) need_bin "$cache/bin/coredns-$COREDNS_VERSION"; cp "$cache/bin/coredns-$COREDNS_VERSION" "$dir/coredns" ;;
    traefik) need_bin "$cache/bin/traefik-$TRAEFIK_VERSION"; cp "$cache/bin/traefik-$TRAEFIK_VERSION" "$dir/traefik" ;;
  esac
}

build() {
  local name=$1 h local_ref dir t0=$SECONDS
  h=$(hash_of "$name")
  local_ref="localhost/coderstack-testbed/$name:$h"
  if ! podman image exists "$local_ref"; then
    log "image $name: building (inputs $h)"
    dir="$work/ctx-$name"
    rm -rf "$dir" && mkdir -p "$dir"
    context "$name" "$dir"
    podman build -q --network host --build-arg "VERSION=$(tag_of "$name")" --label "io.coderstack.inputs=$h" \
      -t "$local_ref" "$dir" >"$work/build-$name.log" 2>&1 \
      || { tail -n 30 "$work/build-$name.log" >&2; die "building image $name failed (log $work/build-$name.log)"; }
    rm -rf "$dir"
    log "image $name: built in $((SECONDS - t0))s"
  fi
  local pushed="$work/$name.pushed" target
  target=$(ref "$name")
  if [ "$(cat "$pushed" 2>/dev/null)" != "$h $target" ]; then
    podman tag "$local_ref" "$target"
    podman push -q --cert-dir "$state/registry/ca" \
      --creds "$(cat "$state/registry/username"):$(cat "$state/registry/password")" "$target" >"$work/push-$name.log" 2>&1 \
      || { tail -n 20 "$work/push-$name.log" >&2; die "pushing $target failed"; }
    echo "$h $target" >"$pushed"
    # the tag moved: the node forgets its copy, so the next pod that starts with it pulls the new one
    local sock="$state/node/containerd/containerd.sock"
    [ -S "$sock" ] && "$state/bin/ctr" --address "$sock" -n k8s.io images rm "$target" >/dev/null 2>&1 || true
    log "image $name: pushed $target"
  fi
}

case ${1:-status} in
  start)
    shift
    [ -s "$state/registry-url" ] || die "the registry is not running (testbed/svc_10_registry.sh start)"
    podman image exists "$base" || bash "$testbed_here/build_image_base.sh"
    mkdir -p "$work"
    names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${all[@]}")
    for n in "${names[@]}"; do build "$n"; done
    ;;
  stop) ;;
  ref) ref "${2:?usage: $0 ref NAME}" ;;
  status)
    for n in "${all[@]}"; do
      if [ -f "$work/$n.pushed" ]; then echo "image $n: $(cut -d' ' -f2 "$work/$n.pushed")"; else echo "image $n: not pushed"; exit 1; fi
    done
    ;;
  *) die "usage: $0 start [NAME...]|stop|status|ref NAME" ;;
esac
