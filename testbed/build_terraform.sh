#!/usr/bin/env bash
# Build the Terraform CLI Coder's provisioner runs, and the two Terraform providers our workspace templates use,
# from the Go module proxy, once, into $cache/bin; lay the providers out as a Terraform *filesystem mirror* and
# write a CLI config that installs providers from that mirror only (fully offline):
#
#   $cache/bin/tofu-$TOFU_VERSION                               linked as $state/bin/terraform (and $state/bin/tofu)
#   $cache/bin/terraform-provider-coder-$TF_PROVIDER_CODER_VERSION
#   $cache/bin/terraform-provider-kubernetes-$TF_PROVIDER_KUBERNETES_VERSION
#   $cache/bin/terraform-provider-kubectl-$TF_PROVIDER_KUBECTL_VERSION     (gavinbunney/kubectl: the workspace pod as a raw
#                                                                 manifest, so templates can say hostUsers; templates/README.md)
#   $cache/terraform-mirror/<host>/<ns>/<type>/<version>/linux_amd64/terraform-provider-<type>_v<version>
#   $state/terraformrc                                          TF_CLI_CONFIG_FILE for Coder and templates/validate.sh
#
# Why OpenTofu and not hashicorp/terraform: every hashicorp/terraform release the proxy serves (v1.9 ... v1.13)
# requires nine nested modules of its own repository (internal/legacy, internal/backend/remote-state/*) at
# v0.0.0-00010101000000-000000000000 through "=> ./..." replace directives; the proxy does not serve those nested
# modules (403 "This module version is not available"), so `go build` outside the terraform repository cannot
# work. OpenTofu v1.10 builds from its module as is (one non-local replace, repeated below). Coder finds the
# binary as `terraform` on PATH and checks `terraform version -json` -> terraform_version: OpenTofu 1.10.x
# reports 1.10.x, inside the range Coder v2.24 accepts (>= 1.1.0, warns above 1.12.9).
#
# Why kubernetes provider v1.13.4: the provider's v2 tags have no /v2 module path, and the proxy refuses every
# commit / pseudo-version of them (403). v1.13.4 is the newest version served; our templates only use resources
# and attributes that exist in both 1.13 and 2.x (kubernetes_deployment, kubernetes_persistent_volume_claim, ...).
# When a v2 build becomes available, change TF_PROVIDER_KUBERNETES_VERSION and the templates' constraint.
#
# Mirror hosts: `source = "coder/coder"` means registry.terraform.io/coder/coder for Terraform and
# registry.opentofu.org/coder/coder for OpenTofu; the mirror holds both names (hard links: the mirror scan does not follow symlinked directories).
#
# Usage: testbed/build_terraform.sh   (warm run: only checks the cache and rewrites links + terraformrc)
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

tofu_v=${TOFU_VERSION:?TOFU_VERSION missing in testbed/versions.env}
coder_pv=${TF_PROVIDER_CODER_VERSION:?TF_PROVIDER_CODER_VERSION missing in testbed/versions.env}
kube_pv=${TF_PROVIDER_KUBERNETES_VERSION:?TF_PROVIDER_KUBERNETES_VERSION missing in testbed/versions.env}
kubectl_pv=${TF_PROVIDER_KUBECTL_VERSION:?TF_PROVIDER_KUBECTL_VERSION missing in testbed/versions.env}
mirror="$cache/terraform-mirror"
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

# module_replaces MODULE@VERSION: the non-local replace directives of that module's go.mod, one per line
# ("A => B vX" or "A vY => B vX"), as go_wrapper wants them.
module_replaces() {
  local probe="$cache/src/probe" modfile
  mkdir -p "$probe"
  [ -f "$probe/go.mod" ] || (cd "$probe" && go mod init probe >/dev/null 2>&1)
  modfile=$(cd "$probe" && go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$modfile" ] || die "cannot download the go.mod of $1"
  awk '
    /^replace[ \t]*\(/ { blk = 1; next }
    blk && /^\)/ { blk = 0; next }
    { line = $0; sub(/\/\/.*/, "", line) }
    blk && line ~ /=>/ { print line; next }
    line ~ /^replace[ \t]+[^(]/ { sub(/^replace[ \t]+/, "", line); print line }
  ' "$modfile" | sed 's/^[ \t]*//; s/[ \t]*$//' | grep -v '=>[ \t]*\.' | sort -u || true
}

# mirror_provider NS TYPE VERSION BINARY: place BINARY in the unpacked filesystem-mirror layout under both registry
# host names (hard links to the cached binary, a copy across file systems).
mirror_provider() {
  local ns=$1 type=$2 v=${3#v} bin=$4 host d
  for host in registry.terraform.io registry.opentofu.org; do
    d="$mirror/$host/$ns/$type/$v/linux_amd64"
    [ -L "$mirror/$host/$ns/$type" ] && rm -f "$mirror/$host/$ns/$type"  # older layout: symlinks are not followed
    mkdir -p "$d"
    ln -f "$bin" "$d/terraform-provider-${type}_v$v" 2>/dev/null || cp -f "$bin" "$d/terraform-provider-${type}_v$v"
  done
}

if want tofu; then
  if [ ! -x "$cache/bin/tofu-$tofu_v" ]; then
    mapfile -t reps < <(module_replaces "github.com/opentofu/opentofu@$tofu_v")
    go_wrapper "$cache/src/tofu-$tofu_v" "github.com/opentofu/opentofu@$tofu_v" "${reps[@]}"
  fi
  # version/VERSION is embedded; dev=no drops the "-dev" suffix, as OpenTofu's release builds do.
  go_binary tofu "$tofu_v" "$cache/src/tofu-$tofu_v" github.com/opentofu/opentofu/cmd/tofu \
    "-X github.com/opentofu/opentofu/version.dev=no"
  ln -sfn "$cache/bin/tofu-$tofu_v" "$state/bin/terraform"
fi

if want coder-provider; then
  w="$cache/src/terraform-provider-coder-$coder_pv"
  if [ ! -x "$cache/bin/terraform-provider-coder-$coder_pv" ]; then
    mapfile -t reps < <(module_replaces "github.com/coder/terraform-provider-coder/v2@$coder_pv")
    go_wrapper "$w" "github.com/coder/terraform-provider-coder/v2@$coder_pv" "${reps[@]}"
  fi
  go_binary terraform-provider-coder "$coder_pv" "$w" github.com/coder/terraform-provider-coder/v2
  mirror_provider coder coder "$coder_pv" "$cache/bin/terraform-provider-coder-$coder_pv"
fi

if want kubernetes-provider; then
  w="$cache/src/terraform-provider-kubernetes-$kube_pv"
  if [ ! -x "$cache/bin/terraform-provider-kubernetes-$kube_pv" ]; then
    # v1.13.4 pins golang.org/x/sys to a 2020 commit that does not build with current Go: leave that one out.
    mapfile -t reps < <(module_replaces "github.com/hashicorp/terraform-provider-kubernetes@$kube_pv" | grep -v '^golang.org/x/sys ')
    # vbom.ml/util (a vanity path, required indirectly through k8s.io/kubectl) is not served; its code is
    # github.com/fvbommel/util at the same commit.
    reps+=("vbom.ml/util => github.com/fvbommel/util v0.0.0-20160121211510-db5cfe13f5cc")
    go_wrapper "$w" "github.com/hashicorp/terraform-provider-kubernetes@$kube_pv" "${reps[@]}"
  fi
  go_binary terraform-provider-kubernetes "$kube_pv" "$w" github.com/hashicorp/terraform-provider-kubernetes
  mirror_provider hashicorp kubernetes "$kube_pv" "$cache/bin/terraform-provider-kubernetes-$kube_pv"
fi

if want kubectl-provider; then
  w="$cache/src/terraform-provider-kubectl-$kubectl_pv"
  if [ ! -x "$cache/bin/terraform-provider-kubectl-$kubectl_pv" ]; then
    mapfile -t reps < <(module_replaces "github.com/gavinbunney/terraform-provider-kubectl@$kubectl_pv")
    go_wrapper "$w" "github.com/gavinbunney/terraform-provider-kubectl@$kubectl_pv" "${reps[@]}"
  fi
  go_binary terraform-provider-kubectl "$kubectl_pv" "$w" github.com/gavinbunney/terraform-provider-kubectl
  mirror_provider gavinbunney kubectl "$kubectl_pv" "$cache/bin/terraform-provider-kubectl-$kubectl_pv"
fi
# The CLI config: providers come from the mirror and nowhere else (no `direct` block: anything not in the mirror
# fails at `init` instead of reaching for the internet).
cat >"$state/terraformrc.tmp" <<EOF
# Written by testbed/build_terraform.sh: install providers only from the local filesystem mirror (offline).
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*", "registry.opentofu.org/*/*"]
  }
}
EOF
mv "$state/terraformrc.tmp" "$state/terraformrc"
if want all; then
  TF_CLI_CONFIG_FILE="$state/terraformrc" "$state/bin/terraform" version >/dev/null || die "built terraform (OpenTofu) binary does not run"
fi
log "terraform (OpenTofu $tofu_v) ready: $state/bin/terraform; providers in $mirror; CLI config $state/terraformrc"
