# coderstack workspace template "kubernetes-ollama" (walkthrough 002): a one-replica Deployment per workspace
# (spread over nodes by pod anti-affinity, running as uid 1000), a home volume, code-server, and Ollama installed
# and started by the agent's startup script with the model the user picks pulled in the background.
# Template variables (admin) vs parameters (users): see README.md beside this file.

terraform {
  required_providers {
    coder = {
      source  = "coder/coder"
      version = ">= 2.4.0, < 3.0.0"
    }
    kubernetes = {
      # 1.13 pinned: see kubernetes-dind/main.tf and templates/README.md
      source  = "hashicorp/kubernetes"
      version = "~> 1.13.4"
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------
# Template variables (admin, from inventory)
# ---------------------------------------------------------------------------------------------------------------

variable "use_kubeconfig" {
  type        = bool
  description = <<-EOF
  Use a kubeconfig on the Coder host? (true/false)
  false: the Coder server runs as a Pod in the cluster the workspaces go to (in-cluster ServiceAccount).
  true: the Coder server runs outside that cluster and reads kubeconfig_path (e.g. a Secret mounted at
  /mnt/secrets/kube/config, see the coder role's coder_workspace_kubeconfig_secret).
  EOF
  default     = false
}

variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig read by the Coder server when use_kubeconfig is true."
  default     = "~/.kube/config"
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace the workspaces are created in (must exist). With an in-cluster Coder server, its own namespace."
}

variable "image" {
  type        = string
  description = "Workspace image (runs as uid 1000, has curl; e.g. codercom/enterprise-base:ubuntu or its copy in a local registry)."
  default     = "codercom/enterprise-base:ubuntu"
}

variable "ollama_install" {
  type        = bool
  description = "Install (as ollama_source says) and start Ollama, and pull the chosen model. false: no Ollama at all."
  default     = true
}

variable "ollama_source" {
  type        = string
  description = <<-EOT
  Where Ollama comes from: script (ollama_install_url, the internet install script; the default), archive (a copy of
  Ollama's release archive, .tgz with bin/ollama, from a mirror inside the network: ollama_archive_url, checked
  against ollama_archive_sha256, unpacked once into ~/.local/ollama on the home volume), image (the image has ollama).
  EOT
  default     = "script"
  validation {
    condition     = contains(["script", "archive", "image"], var.ollama_source)
    error_message = "ollama_source must be script, archive or image."
  }
}

variable "ollama_install_url" {
  type        = string
  description = "Ollama install script (ollama_source = script)."
  default     = "https://ollama.com/install.sh"
}

variable "ollama_archive_url" {
  type        = string
  description = "URL of Ollama's release archive (.tgz with bin/ollama) on a mirror (ollama_source = archive)."
  default     = ""
}

variable "ollama_archive_sha256" {
  type        = string
  description = "sha256 of that archive: a different file is refused (ollama_source = archive)."
  default     = ""
  validation {
    condition     = var.ollama_archive_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.ollama_archive_sha256))
    error_message = "ollama_archive_sha256 must be 64 lowercase hex digits."
  }
}

variable "code_server_install_url" {
  type        = string
  description = "code-server install script (skipped when the image has code-server)."
  default     = "https://code-server.dev/install.sh"
}

variable "storage_class" {
  type        = string
  description = "StorageClass of the home volume; empty: the cluster's default."
  default     = ""
}

variable "max_home_disk_size" {
  type        = number
  description = "Largest home volume (GiB) a user may choose (parameter home_disk_size); keep it within the workspace namespace's LimitRange (coderstack: namespaces_workspace_volume_max_size)."
  default     = 100
  validation {
    condition     = var.max_home_disk_size >= 1
    error_message = "max_home_disk_size must be at least 1 (GiB)."
  }
}

variable "coder_internal_url" {
  type        = string
  description = "In-cluster Coder URL for the agent when the access URL uses a self-signed certificate; empty: the access URL."
  default     = ""
}

variable "ca_configmap" {
  type        = string
  description = "ConfigMap in the workspace namespace whose ca.crt the workspace trusts besides the image's CAs (coderstack's ingress role exports its self-signed CA as ConfigMap coder-ca): the agent then downloads its binary from, and connects to, an access URL with that certificate. Empty: the image's CAs only. A missing ConfigMap is ignored (optional volume)."
  default     = ""
}

# ---------------------------------------------------------------------------------------------------------------
# Parameters (users, per workspace)
# ---------------------------------------------------------------------------------------------------------------

data "coder_parameter" "cpu" {
  name         = "cpu"
  display_name = "CPU"
  description  = "Number of CPU cores (limit)."
  type         = "number"
  default      = "2"
  icon         = "/icon/memory.svg"
  mutable      = true
  order        = 1
  option {
    name  = "2 cores"
    value = "2"
  }
  option {
    name  = "4 cores"
    value = "4"
  }
  option {
    name  = "6 cores"
    value = "6"
  }
  option {
    name  = "8 cores"
    value = "8"
  }
}

data "coder_parameter" "memory" {
  name         = "memory"
  display_name = "Memory"
  description  = "Memory in GiB (limit). Models need RAM: llama3 8B wants about 8 GiB."
  type         = "number"
  default      = "8"
  icon         = "/icon/memory.svg"
  mutable      = true
  order        = 2
  option {
    name  = "2 GiB"
    value = "2"
  }
  option {
    name  = "4 GiB"
    value = "4"
  }
  option {
    name  = "8 GiB"
    value = "8"
  }
  option {
    name  = "16 GiB"
    value = "16"
  }
}

data "coder_parameter" "home_disk_size" {
  name         = "home_disk_size"
  display_name = "Home disk size"
  description  = "Size of the home volume in GiB (models are stored there, under ~/.ollama)."
  type         = "number"
  default      = "20"
  icon         = "/emojis/1f4be.png"
  mutable      = false
  order        = 3
  # bounded by the admin (template variable max_home_disk_size); the namespace's LimitRange is the backstop
  validation {
    min   = 1
    max   = var.max_home_disk_size
    error = "The home disk must be from {min} to {max} GiB on this deployment."
  }
}

data "coder_parameter" "ollama_model" {
  name         = "ollama_model"
  display_name = "Ollama model"
  description  = "Model pulled when the workspace starts (ollama pull NAME); empty: pull nothing."
  type         = "string"
  default      = "llama3"
  icon         = "/icon/memory.svg"
  mutable      = true
  order        = 4
  validation {
    regex = "^[A-Za-z0-9._:/-]*$"
    error = "A model name like llama3, llama3.2:1b or namespace/model:tag."
  }
}

# ---------------------------------------------------------------------------------------------------------------

locals {
  # In-cluster: the Coder server's ServiceAccount, given explicitly. hashicorp/kubernetes 1.x does not fall back to
  # the in-cluster configuration when no kubeconfig is loaded (it then calls http://localhost).
  sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
}

provider "kubernetes" {
  load_config_file       = var.use_kubeconfig
  config_path            = var.use_kubeconfig ? pathexpand(var.kubeconfig_path) : null
  host                   = var.use_kubeconfig ? null : "https://kubernetes.default.svc"
  cluster_ca_certificate = !var.use_kubeconfig && fileexists("${local.sa_dir}/ca.crt") ? file("${local.sa_dir}/ca.crt") : null
  token                  = !var.use_kubeconfig && fileexists("${local.sa_dir}/token") ? file("${local.sa_dir}/token") : null
}

data "coder_workspace" "me" {}
data "coder_workspace_owner" "me" {}

locals {
  name = "coder-${lower(data.coder_workspace_owner.me.name)}-${lower(data.coder_workspace.me.name)}"
  labels = {
    "app.kubernetes.io/name"     = "coder-workspace"
    "app.kubernetes.io/instance" = local.name
    "app.kubernetes.io/part-of"  = "coder"
    "com.coder.resource"         = "true"
    "com.coder.workspace.id"     = data.coder_workspace.me.id
    "com.coder.workspace.name"   = data.coder_workspace.me.name
    "com.coder.user.id"          = data.coder_workspace_owner.me.id
    "com.coder.user.username"    = data.coder_workspace_owner.me.name
  }
  annotations = {
    "com.coder.user.email" = data.coder_workspace_owner.me.email
  }
  access_url = trimsuffix(data.coder_workspace.me.access_url, "/")
  init_script = (var.coder_internal_url == "" ? coder_agent.main.init_script :
  replace(coder_agent.main.init_script, local.access_url, trimsuffix(var.coder_internal_url, "/")))
  # The CA of ca_configmap joins the image's bundle for the init script, the agent and everything it starts
  # (curl, Go, Node read these variables); without the ConfigMap the image's own CAs are used.
  trust_ca   = <<-EOT
    if [ -s /etc/coderstack/ca/ca.crt ]; then
      b=/tmp/coderstack-ca-bundle.crt
      cat /etc/ssl/certs/ca-certificates.crt /etc/coderstack/ca/ca.crt >"$b" 2>/dev/null || cat /etc/coderstack/ca/ca.crt >"$b"
      export SSL_CERT_FILE="$b" CURL_CA_BUNDLE="$b" NODE_EXTRA_CA_CERTS=/etc/coderstack/ca/ca.crt
    fi
  EOT
  startup_sh = <<-EOT
    set -e
    # code-server on 127.0.0.1:13337: it has no auth of its own, so only the pod's loopback (the agent, which Coder's
    # app proxy goes through) reaches it
    if ! command -v code-server >/dev/null 2>&1 && [ ! -x /tmp/code-server/bin/code-server ]; then
      curl -fsSL ${var.code_server_install_url} | sh -s -- --method=standalone --prefix=/tmp/code-server
    fi
    CS=$(command -v code-server || echo /tmp/code-server/bin/code-server)
    nohup "$CS" --auth none --bind-addr 127.0.0.1:13337 >/tmp/code-server.log 2>&1 &
    # Ollama: installed as ollama_source says, started in the background, the chosen model pulled in the background.
    if [ "${var.ollama_install}" != true ]; then
      echo "ollama: skipped (template variable ollama_install = false)"
      exit 0
    fi
    case "${var.ollama_source}" in
      script)
        command -v ollama >/dev/null 2>&1 || curl -fsSL ${var.ollama_install_url} | sh
        OLLAMA=$(command -v ollama) ;;
      archive)
        # once per archive: ~/.local/ollama on the home volume, replaced whole when the sha256 changes
        d="$HOME/.local/ollama" want='${var.ollama_archive_sha256}'
        if [ -z "$want" ]; then echo "ollama: ollama_source = archive needs ollama_archive_sha256" >&2; exit 1; fi
        if [ "$(cat "$d/.sha256" 2>/dev/null)" != "$want" ]; then
          rm -rf "$d.new" && mkdir -p "$d.new"
          curl -fsSL '${var.ollama_archive_url}' -o "$d.new/archive.tgz"
          echo "$want  $d.new/archive.tgz" | sha256sum -c - >/dev/null \
            || { echo "ollama: ${var.ollama_archive_url} is not the archive whose sha256 is $want" >&2; rm -rf "$d.new"; exit 1; }
          tar -xzf "$d.new/archive.tgz" -C "$d.new" && rm -f "$d.new/archive.tgz"
          echo "$want" >"$d.new/.sha256"
          rm -rf "$d" && mv "$d.new" "$d"
        fi
        mkdir -p "$HOME/.local/bin" && ln -sfn "$d/bin/ollama" "$HOME/.local/bin/ollama"
        OLLAMA="$HOME/.local/bin/ollama" ;;
      image)
        OLLAMA=$(command -v ollama) || { echo "ollama: ollama_source = image, but the image has no ollama" >&2; exit 1; } ;;
    esac
    nohup "$OLLAMA" serve >/tmp/ollama.log 2>&1 &
    MODEL='${data.coder_parameter.ollama_model.value}'
    if [ -n "$MODEL" ]; then
      nohup sh -c "for i in \$(seq 1 30); do '$OLLAMA' list >/dev/null 2>&1 && break; sleep 1; done; '$OLLAMA' pull '$MODEL'" >/tmp/ollama-pull.log 2>&1 &
    fi
  EOT
  # load average scaled by the number of cores (POSIX sh, see startup_script)
  load_sh      = <<-EOT
    echo "`cat /proc/loadavg | awk '{ print $1 }'` `nproc`" | awk '{ printf "%0.2f", $1/$2 }'
  EOT
  init_command = "${local.trust_ca}\n${local.init_script}"
}

resource "coder_agent" "main" {
  os   = "linux"
  arch = "amd64"
  dir  = "/home/coder"
  env = {
    OLLAMA_MODELS = "/home/coder/.ollama/models"
    # the agent expands $PATH: ollama from an archive (~/.local/bin) in every terminal and app
    PATH = "/home/coder/.local/bin:$PATH"
  }
  # The agent runs scripts with the user's login shell (fish in coderstack's image, bash elsewhere): the POSIX sh
  # scripts are handed to sh, base64-encoded, so any login shell runs them.
  startup_script = "echo ${base64encode(local.startup_sh)} | base64 -d | sh"

  metadata {
    display_name = "CPU Usage"
    key          = "0_cpu_usage"
    script       = "coder stat cpu"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "RAM Usage"
    key          = "1_ram_usage"
    script       = "coder stat mem"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "Home Disk"
    key          = "3_home_disk"
    script       = "coder stat disk --path /home/coder"
    interval     = 60
    timeout      = 1
  }
  metadata {
    display_name = "CPU Usage (Host)"
    key          = "4_cpu_usage_host"
    script       = "coder stat cpu --host"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "Memory Usage (Host)"
    key          = "5_mem_usage_host"
    script       = "coder stat mem --host"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "Load Average (Host)"
    key          = "6_load_host"
    # load average scaled by the number of cores
    script   = "echo ${base64encode(local.load_sh)} | base64 -d | sh"
    interval = 60
    timeout  = 1
  }
}

resource "coder_app" "code-server" {
  agent_id     = coder_agent.main.id
  slug         = "code-server"
  display_name = "code-server"
  icon         = "/icon/code.svg"
  url          = "http://localhost:13337/?folder=/home/coder"
  subdomain    = false
  share        = "owner"

  healthcheck {
    url       = "http://localhost:13337/healthz"
    interval  = 3
    threshold = 10
  }
}

resource "kubernetes_persistent_volume_claim" "home" {
  metadata {
    name        = "${local.name}-home"
    namespace   = var.namespace
    labels      = merge(local.labels, { "app.kubernetes.io/name" = "coder-pvc" })
    annotations = local.annotations
  }
  wait_until_bound = false
  spec {
    access_modes       = ["ReadWriteOnce"]
    storage_class_name = var.storage_class == "" ? null : var.storage_class
    resources {
      requests = {
        storage = "${data.coder_parameter.home_disk_size.value}Gi"
      }
    }
  }
}

resource "kubernetes_deployment" "main" {
  count            = data.coder_workspace.me.start_count
  depends_on       = [kubernetes_persistent_volume_claim.home]
  wait_for_rollout = false
  metadata {
    name        = local.name
    namespace   = var.namespace
    labels      = local.labels
    annotations = local.annotations
  }

  spec {
    replicas = 1
    selector {
      match_labels = {
        "app.kubernetes.io/instance" = local.name
      }
    }
    strategy {
      type = "Recreate"
    }

    template {
      metadata {
        labels = local.labels
      }
      spec {
        security_context {
          run_as_user = 1000
          fs_group    = 1000
        }

        container {
          name              = "dev"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          command           = ["sh", "-c", local.init_command]
          security_context {
            run_as_user = 1000
          }
          env {
            name  = "CODER_AGENT_TOKEN"
            value = coder_agent.main.token
          }
          resources {
            requests {
              cpu    = "250m"
              memory = "512Mi"
            }
            limits {
              cpu    = data.coder_parameter.cpu.value
              memory = "${data.coder_parameter.memory.value}Gi"
            }
          }
          volume_mount {
            mount_path = "/home/coder"
            name       = "home"
            read_only  = false
          }
          dynamic "volume_mount" {
            for_each = var.ca_configmap == "" ? [] : [1]
            content {
              name       = "coderstack-ca"
              mount_path = "/etc/coderstack/ca"
              read_only  = true
            }
          }
        }

        volume {
          name = "home"
          persistent_volume_claim {
            claim_name = kubernetes_persistent_volume_claim.home.metadata[0].name
            read_only  = false
          }
        }
        dynamic "volume" {
          for_each = var.ca_configmap == "" ? [] : [1]
          content {
            name = "coderstack-ca"
            config_map {
              name     = var.ca_configmap
              optional = true
            }
          }
        }

        affinity {
          # Spread workspace pods over the nodes.
          pod_anti_affinity {
            preferred_during_scheduling_ignored_during_execution {
              weight = 1
              pod_affinity_term {
                topology_key = "kubernetes.io/hostname"
                label_selector {
                  match_expressions {
                    key      = "app.kubernetes.io/name"
                    operator = "In"
                    values   = ["coder-workspace"]
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
