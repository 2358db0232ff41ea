# coderstack workspace template "kubernetes-dind" (walkthrough 000): one pod per workspace running our base image
# (image/ in the inventory's registry: fish, ssh, code-server, dockerd), three persistent volumes (home, docker data,
# linuxbrew); dockerd runs in it as docker_mode says (userns by default: root only inside the pod).
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
    kubectl = {
      # The workspace pod as a manifest (kubectl_manifest): hashicorp/kubernetes 1.13 cannot say hostUsers,
      # procMount or ephemeral-storage. See templates/README.md, "Why the pod is a kubectl_manifest".
      source  = "gavinbunney/kubectl"
      version = "~> 1.19.0"
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

variable "docker_mode" {
  type        = string
  description = "How dockerd runs in a workspace. userns: the pod runs in a user namespace (hostUsers false); root and the capabilities dockerd needs hold only inside the pod (needs Kubernetes >= 1.33 with containerd >= 2.0 or CRI-O >= 1.25, runc >= 1.2). privileged: a privileged container, root on its node (old clusters only; coderstack puts these workspaces in a namespace of their own). none: no dockerd, no extra privilege."
  default     = "userns"
  validation {
    condition     = contains(["userns", "privileged", "none"], var.docker_mode)
    error_message = "docker_mode must be userns, privileged or none."
  }
}

variable "ephemeral_storage" {
  type        = number
  description = "Limit of the pod's ephemeral storage in GiB (container layer, logs, emptyDir; the docker data and home are volumes): the kubelet evicts a pod above it, so one workspace cannot fill its node's disk."
  default     = 10
  validation {
    condition     = var.ephemeral_storage >= 1 && var.ephemeral_storage <= 1024
    error_message = "ephemeral_storage must be from 1 to 1024 (GiB)."
  }
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

# The cluster connection, once, for both providers (the volumes' and the pod's)
locals {
  kube_config_path = var.use_kubeconfig ? pathexpand(var.kubeconfig_path) : null
  kube_host        = var.use_kubeconfig ? null : "https://kubernetes.default.svc"
  kube_ca          = !var.use_kubeconfig && fileexists("${local.sa_dir}/ca.crt") ? file("${local.sa_dir}/ca.crt") : null
  kube_token       = !var.use_kubeconfig && fileexists("${local.sa_dir}/token") ? file("${local.sa_dir}/token") : null
}

provider "kubernetes" {
  load_config_file       = var.use_kubeconfig
  config_path            = local.kube_config_path
  host                   = local.kube_host
  cluster_ca_certificate = local.kube_ca
  token                  = local.kube_token
}

provider "kubectl" {
  load_config_file       = var.use_kubeconfig
  config_path            = local.kube_config_path
  host                   = local.kube_host
  cluster_ca_certificate = local.kube_ca
  token                  = local.kube_token
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

locals {
  # The container's security context per docker_mode (see variable docker_mode and README.md, "Docker modes").
  # userns: the pod's uid 0 is an unprivileged uid range on the node (hostUsers false below); dockerd needs to mount,
  # make namespaces and set up its network inside it, which these capabilities allow only within the pod's user
  # namespace. A fresh /proc for the containers dockerd starts needs the pod's own /proc unmasked (procMount), which
  # Kubernetes allows only in a user namespace.
  security_context = {
    userns = {
      privileged               = false
      allowPrivilegeEscalation = true
      procMount                = "Unmasked"
      capabilities             = { add = ["SYS_ADMIN", "NET_ADMIN"] }
      seccompProfile           = { type = "Unconfined" }
      appArmorProfile          = { type = "Unconfined" }
    }
    privileged = { privileged = true }
    none = {
      privileged               = false
      allowPrivilegeEscalation = false
      seccompProfile           = { type = "RuntimeDefault" }
    }
  }
  env = [
    { name = "CODER_AGENT_TOKEN", value = coder_agent.main.token },
    # read by the image's bootstrap.fish
    { name = "CODERSTACK_LINUXBREW", value = var.linuxbrew ? "1" : "0" },
    { name = "CODERSTACK_DOCKERD", value = var.docker_mode == "none" ? "0" : "1" },
    { name = "CODERSTACK_DOCKER_MODE", value = var.docker_mode },
    # code-server (no auth of its own) listens on the pod's loopback only; Coder's app proxy reaches it through the
    # agent, which connects to localhost
    { name = "CODE_SERVER_BIND_ADDR", value = "127.0.0.1:${var.code_server_port}" },
  ]
  ca_mount = var.ca_configmap == "" ? [] : [{ name = "coderstack-ca", mountPath = "/etc/coderstack/ca", readOnly = true }]
  ca_volume = var.ca_configmap == "" ? [] : [{
    name      = "coderstack-ca"
    configMap = { name = var.ca_configmap, optional = true }
  }]
  pod = {
    apiVersion = "v1"
    kind       = "Pod"
    metadata = {
      name        = local.name
      namespace   = var.namespace
      labels      = local.labels
      annotations = local.annotations
    }
    spec = merge({
      automountServiceAccountToken = false
      enableServiceLinks           = false
      containers = [{
        name            = "dev"
        image           = data.coder_parameter.image.value
        imagePullPolicy = var.image_pull_policy
        command         = ["sh", "-c", local.init_command]
        env             = local.env
        securityContext = local.security_context[var.docker_mode]
        resources = {
          requests = { cpu = "250m", memory = "512Mi", "ephemeral-storage" = "1Gi" }
          limits = {
            cpu                 = data.coder_parameter.cpu.value
            memory              = "${data.coder_parameter.memory.value}Gi"
            "ephemeral-storage" = "${var.ephemeral_storage}Gi"
          }
        }
        volumeMounts = concat(
          [for k, v in local.volumes : { name = k, mountPath = v.path }],
          local.ca_mount,
        )
      }]
      volumes = concat(
        [for k, v in local.volumes : {
          name                  = k
          persistentVolumeClaim = { claimName = kubernetes_persistent_volume_claim.volume[k].metadata[0].name }
        }],
        local.ca_volume,
      )
    }, var.docker_mode == "userns" ? { hostUsers = false } : {})
  }
}

# The workspace pod, only while the workspace is started. Any change replaces it (a pod's spec is immutable), and a
# stop waits until the pod is gone, so the next start can reuse its name and volumes.
resource "kubectl_manifest" "main" {
  count     = data.coder_workspace.me.start_count
  yaml_body = yamlencode(local.pod)
  force_new = true
  wait      = true
  # the agent token is in the container's environment: keep the spec out of plans and logs
  sensitive_fields = ["spec"]
}
