# coderstack workspace template "kubernetes-dind" (walkthrough 000): one pod per workspace running our base image
# (image/ in the inventory's registry: fish, ssh, code-server, dockerd), three persistent volumes (home, docker data,
# linuxbrew) and, when the admin opts in, a privileged container so dockerd can run inside it (docker-in-docker).
# Template variables (admin, set by roles/coder_templates from inventory) vs parameters (users, per workspace):
# see README.md beside this file.

terraform {
  required_providers {
    coder = {
      source  = "coder/coder"
      version = ">= 2.4.0, < 3.0.0"
    }
    kubernetes = {
      # 1.13: the version built from source for the offline mirror (see templates/README.md). Its
      # resources { requests { ... } } are blocks; 2.x made them maps, so the major version is pinned.
      source  = "hashicorp/kubernetes"
      version = "~> 1.13.4"
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------
# Template variables: set once per template by the admin (inventory `coder_templates[].variables`).
# ---------------------------------------------------------------------------------------------------------------

variable "namespace" {
  type        = string
  description = "Kubernetes namespace the workspaces are created in (must exist)."
  default     = "coder"
}

variable "use_kubeconfig" {
  type        = bool
  description = "true: the Coder server runs outside the workspaces' cluster and reads kubeconfig_path; false: in-cluster ServiceAccount."
  default     = false
}

variable "kubeconfig_path" {
  type        = string
  description = "Kubeconfig read by the Coder server when use_kubeconfig is true."
  default     = "~/.kube/config"
}

variable "default_image" {
  type        = string
  description = "Default workspace image: coderstack's base image (image/) in the inventory's registry (coderstack_workspace_image)."
  default     = "localhost:15000/coderstack/workspace:latest"
}

variable "image_pattern" {
  type        = string
  description = "Regular expression (RE2) every workspace image must match, e.g. ^registry\\.example\\.com/ to allow only the platform's registry. Empty: any image."
  default     = ""
}

variable "image_pull_policy" {
  type        = string
  description = "Pull policy of the workspace container (Always, IfNotPresent, Never)."
  default     = "IfNotPresent"
  validation {
    condition     = contains(["Always", "IfNotPresent", "Never"], var.image_pull_policy)
    error_message = "image_pull_policy must be Always, IfNotPresent or Never."
  }
}

variable "privileged" {
  type        = bool
  description = "Run the workspace container privileged. Needed for docker-in-docker (dockerd in the workspace); gives the workspace root on its node. Off unless the admin opts in."
  default     = false
}

variable "linuxbrew" {
  type        = bool
  description = "Install Linuxbrew on a workspace's first start (downloads from the internet: turn off where pods have no route out, e.g. air-gapped clusters or the coderstack testbed)."
  default     = true
}

variable "coder_internal_url" {
  type        = string
  description = "In-cluster Coder URL (e.g. http://coder.coder.svc.cluster.local). When set, the agent downloads its binary and connects there instead of the access URL: needed when the access URL uses a self-signed certificate the image does not trust. Empty: use the access URL."
  default     = ""
}

variable "ca_configmap" {
  type        = string
  description = "ConfigMap in the workspace namespace whose ca.crt the workspace trusts besides the image's CAs (coderstack's ingress role exports its self-signed CA as ConfigMap coder-ca): the agent then downloads its binary from, and connects to, an access URL with that certificate. Empty: the image's CAs only. A missing ConfigMap is ignored (optional volume)."
  default     = ""
}

variable "bootstrap_command" {
  type        = string
  description = "Command that starts the image's services (dockerd, code-server on code_server_port); run in the background by the agent's startup script."
  default     = "fish /tmp/code/bootstrap.fish"
}

variable "code_server_port" {
  type        = number
  description = "Port code-server listens on, on the workspace's loopback only (the base image's bootstrap reads it from CODE_SERVER_BIND_ADDR; default 9069)."
  default     = 9069
  validation {
    condition     = var.code_server_port >= 1024 && var.code_server_port <= 65535 && floor(var.code_server_port) == var.code_server_port
    error_message = "code_server_port must be a port number from 1024 to 65535."
  }
}

variable "home_disk_size" {
  type        = number
  description = "Size of the home volume (/root) in GiB."
  default     = 4
}

variable "docker_disk_size" {
  type        = number
  description = "Size of the docker data volume (/var/lib/docker) in GiB."
  default     = 10
}

variable "linuxbrew_disk_size" {
  type        = number
  description = "Size of the linuxbrew volume (/home/linuxbrew) in GiB."
  default     = 10
}

variable "storage_class" {
  type        = string
  description = "StorageClass of the volumes; empty: the cluster's default."
  default     = ""
}

# ---------------------------------------------------------------------------------------------------------------
# Parameters: chosen by the user per workspace.
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
    name  = "8 cores"
    value = "8"
  }
}

data "coder_parameter" "memory" {
  name         = "memory"
  display_name = "Memory"
  description  = "Memory in GiB (limit)."
  type         = "number"
  default      = "2"
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
}

data "coder_parameter" "image" {
  name         = "image"
  display_name = "Container image"
  description  = "Workspace image; it must provide the bootstrap command of this template."
  type         = "string"
  default      = var.default_image
  icon         = "/icon/docker.png"
  mutable      = true
  order        = 3
  # the admin limits images to a registry (variable image_pattern); Coder refuses a workspace with another image
  dynamic "validation" {
    for_each = var.image_pattern == "" ? [] : [var.image_pattern]
    content {
      regex = validation.value
      error = "The image must match ${validation.value}: this deployment allows only images from its own registry."
    }
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
  # Self-signed access URL: point the agent's init script (binary download + connection) at the in-cluster URL.
  access_url = trimsuffix(data.coder_workspace.me.access_url, "/")
  init_script = (var.coder_internal_url == "" ? coder_agent.main.init_script :
  replace(coder_agent.main.init_script, local.access_url, trimsuffix(var.coder_internal_url, "/")))
  # The CA of ca_configmap joins the image's bundle for the init script, the agent and everything it starts
  # (curl, Go, Node read these variables); without the ConfigMap the image's own CAs are used.
  trust_ca = <<-EOT
    if [ -s /etc/coderstack/ca/ca.crt ]; then
      b=/tmp/coderstack-ca-bundle.crt
      cat /etc/ssl/certs/ca-certificates.crt /etc/coderstack/ca/ca.crt >"$b" 2>/dev/null || cat /etc/coderstack/ca/ca.crt >"$b"
      export SSL_CERT_FILE="$b" CURL_CA_BUNDLE="$b" NODE_EXTRA_CA_CERTS=/etc/coderstack/ca/ca.crt
    fi
  EOT
  startup_sh = <<-EOT
    set -e
    nohup ${var.bootstrap_command} >/tmp/bootstrap.log 2>&1 &
  EOT
  init_command = "${local.trust_ca}\n${local.init_script}"
  volumes = {
    home      = { path = "/root", size = var.home_disk_size }
    docker    = { path = "/var/lib/docker", size = var.docker_disk_size }
    linuxbrew = { path = "/home/linuxbrew", size = var.linuxbrew_disk_size }
  }
}

resource "coder_agent" "main" {
  os   = "linux"
  arch = "amd64"
  dir  = "/root"
  # The image's bootstrap starts dockerd and then execs code-server: run it in the background so the agent
  # reports "ready" while code-server keeps running.
  # The agent runs scripts with the user's login shell (fish in coderstack's image): the POSIX sh script below is
  # handed to sh, base64-encoded, so any login shell runs it.
  startup_script = "echo ${base64encode(local.startup_sh)} | base64 -d | sh"

  metadata {
    display_name = "CPU usage"
    key          = "0_cpu_usage"
    script       = "coder stat cpu"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "Memory usage"
    key          = "1_mem_usage"
    script       = "coder stat mem"
    interval     = 10
    timeout      = 1
  }
  metadata {
    display_name = "Docker disk"
    key          = "2_docker_disk"
    script       = "coder stat disk --path /var/lib/docker"
    interval     = 60
    timeout      = 1
  }
}

resource "coder_app" "code-server" {
  agent_id     = coder_agent.main.id
  slug         = "code-server"
  display_name = "code-server"
  icon         = "/icon/code.svg"
  url          = "http://localhost:${var.code_server_port}/?folder=/root"
  subdomain    = false
  share        = "owner"

  healthcheck {
    url       = "http://localhost:${var.code_server_port}/healthz"
    interval  = 3
    threshold = 10
  }
}

resource "kubernetes_persistent_volume_claim" "volume" {
  for_each = local.volumes
  metadata {
    name        = "${local.name}-${each.key}"
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
        storage = "${each.value.size}Gi"
      }
    }
  }
  lifecycle {
    # Volumes outlive the pod (stop/start keeps the data); they go when the workspace is deleted.
    ignore_changes = [metadata[0].annotations]
  }
}

resource "kubernetes_pod" "main" {
  count = data.coder_workspace.me.start_count
  metadata {
    name        = local.name
    namespace   = var.namespace
    labels      = local.labels
    annotations = local.annotations
  }
  spec {
    container {
      name              = "dev"
      image             = data.coder_parameter.image.value
      image_pull_policy = var.image_pull_policy
      command           = ["sh", "-c", local.init_command]
      env {
        name  = "CODER_AGENT_TOKEN"
        value = coder_agent.main.token
      }
      env {
        # read by the image's bootstrap.fish
        name  = "CODERSTACK_LINUXBREW"
        value = var.linuxbrew ? "1" : "0"
      }
      env {
        # read by the image's bootstrap.fish: code-server (no auth of its own) listens on the pod's loopback only;
        # Coder's app proxy reaches it through the agent, which connects to localhost
        name  = "CODE_SERVER_BIND_ADDR"
        value = "127.0.0.1:${var.code_server_port}"
      }
      security_context {
        # docker-in-docker needs a privileged container; opt-in per template (variable "privileged").
        privileged = var.privileged
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
      dynamic "volume_mount" {
        for_each = local.volumes
        content {
          name       = volume_mount.key
          mount_path = volume_mount.value.path
          read_only  = false
        }
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
    dynamic "volume" {
      for_each = local.volumes
      content {
        name = volume.key
        persistent_volume_claim {
          claim_name = kubernetes_persistent_volume_claim.volume[volume.key].metadata[0].name
          read_only  = false
        }
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
  }
}
