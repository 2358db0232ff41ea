#!/usr/bin/env bash
# `terraform init` (providers from the offline filesystem mirror only) + `terraform validate` of every template
# directory under templates/ (a directory with a *.tf file), each in a scratch copy so no .terraform/ or lock file
# lands in the tree (they would change the content hash coder_template uploads).
# Needs testbed/build_terraform.sh to have run: $state/bin/terraform and $state/terraformrc.
# Usage: templates/validate.sh [TEMPLATE_DIR...]     (default: every template under templates/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
state=${CODERSTACK_TESTBED_DIR:-$repo/.testbed}
tf=${TERRAFORM:-$state/bin/terraform}
export TF_CLI_CONFIG_FILE=${CODERSTACK_TERRAFORMRC:-$state/terraformrc}  # never ~/.terraformrc: offline mirror only
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
[ -x "$tf" ] || { echo "validate.sh: no terraform at $tf: run testbed/build_terraform.sh" >&2; exit 2; }
[ -f "$TF_CLI_CONFIG_FILE" ] || { echo "validate.sh: no CLI config $TF_CLI_CONFIG_FILE: run testbed/build_terraform.sh" >&2; exit 2; }

if [ $# -gt 0 ]; then dirs=("$@"); else
  mapfile -t dirs < <(find "$here" -mindepth 2 -maxdepth 2 -name '*.tf' -printf '%h\n' | sort -u)
fi
[ ${#dirs[@]} -gt 0 ] || { echo "validate.sh: no template directories found" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for d in "${dirs[@]}"; do
  name=$(basename "$d")
  work="$scratch/$name"
  mkdir -p "$work"
  (cd "$d" && tar --exclude=.terraform --exclude=.terraform.lock.hcl --exclude='*.tfstate*' -cf - .) | tar -xf - -C "$work"
  if (cd "$work" && "$tf" init -backend=false -input=false -no-color >"$scratch/$name.init.log" 2>&1 &&
      "$tf" validate -no-color); then
    echo "ok: $name"
  else
    echo "FAILED: $name" >&2
    cat "$scratch/$name.init.log" >&2
    failed=1
  fi
done
exit $failed
