#!/usr/bin/env bash
# Start the coderstack testbed, all on this machine and on networks it makes itself:
#   - its network (testbed/net.sh: a bridge whose address is the real node's IP, forwarding limited to it);
#   - a real Kubernetes control plane (etcd on loopback; kube-apiserver on the node IP, where pods reach it
#     through the `kubernetes` Service; kube-controller-manager, kube-scheduler);
#   - simulated nodes (kwok), tainted kwok.x-k8s.io/node=fake:NoSchedule so that only pods which tolerate it
#     (scale tests) land there; a dynamic hostPath provisioner behind the default StorageClass;
#   - then testbed/svc_*.sh in order: registry, PostgreSQL, the locally built images, the real node
#     (containerd + kubelet + kube-proxy), cluster DNS and the ingress controller, the artifact mirror.
# Idempotent: what already runs is left alone. Writes $state/kubeconfig. testbed/down.sh undoes all of it.
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"
t0=$SECONDS
bin=$state/bin
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: run scripts/setup.sh (or testbed/build.sh) first"
done
pki=$state/pki
mkdir -p "$pki" "$state/logs" "$state/pids" "$state/volumes"
export PATH="$bin:$PATH"

# --- certificates (made once) ---------------------------------------------------------------
cert() { # cert NAME SUBJECT [SAN]: a client or serving certificate signed by the testbed CA
  local name=$1 subj=$2 san=${3:-}
  [ -f "$pki/$name.crt" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  local ext="$pki/$name.ext"
  # subject and authority key identifiers: Python >= 3.13 verifies strictly (VERIFY_X509_STRICT) and wants them
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "subjectKeyIdentifier=hash"; echo "authorityKeyIdentifier=keyid,issuer"
    if [ -n "$san" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi; } >"$ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$ext"
}
# A CA made before it carried keyUsage: Python >= 3.13 (the current-Ansible lane, scripts/lane.sh) refuses it
# ("CA cert does not include key usage extension"). It is made again with every certificate and kubeconfig it signed;
# the service account key stays, so the cluster's tokens stay valid.
if [ -f "$pki/ca.crt" ] && ! openssl x509 -in "$pki/ca.crt" -noout -ext keyUsage 2>/dev/null | grep -q "Certificate Sign"; then
  log "making the testbed CA again with keyUsage, and the certificates it signs (Python >= 3.13 refuses the old one)"
  find "$pki" -maxdepth 1 -type f ! -name sa.key ! -name sa.pub -delete
  rm -f "$state/kubeconfig"
fi
if [ ! -f "$pki/ca.crt" ]; then
  log "creating the testbed CA, serving and client certificates"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -days 3650 -sha256 \
    -subj "/CN=coderstack-testbed-ca" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/ca.crt" 2>/dev/null
fi
if [ ! -f "$pki/sa.key" ]; then
  log "creating the service account key"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
# (re)made when it does not name the node IP (state from before the real node)
if [ -f "$pki/apiserver.crt" ] && ! openssl x509 -in "$pki/apiserver.crt" -noout -ext subjectAltName | grep -q "IP Address:$TESTBED_NODE_IP\b"; then
  rm -f "$pki/apiserver.crt" "$pki/apiserver.key"
fi
cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:$TESTBED_NODE_IP,IP:$TESTBED_API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=coderstack-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kwok "/O=system:masters/CN=kwok"
cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
# the real node (testbed/svc_40_node.sh): kubelet client and serving certificates, kube-proxy
cert kubelet "/O=system:nodes/CN=system:node:$TESTBED_NODE_NAME"
cert kubelet-serving "/CN=$TESTBED_NODE_NAME" "IP:$TESTBED_NODE_IP,DNS:$TESTBED_NODE_NAME"
cert kube-proxy "/CN=system:kube-proxy"
chmod 600 "$pki"/*.key

bash "$testbed_here/net.sh" up
server="https://$TESTBED_NODE_IP:$TESTBED_APISERVER_PORT"
kubeconfig() { # kubeconfig FILE USER: a kubeconfig with embedded certificates
  local file=$1 user=$2
  if [ -f "$file" ] && grep -q "server: $server\$" "$file"; then return 0; fi
  rm -f "$file"
  KUBECONFIG=$file kubectl config set-cluster coderstack-testbed --server="$server" \
    --certificate-authority="$pki/ca.crt" --embed-certs=true >/dev/null
  KUBECONFIG=$file kubectl config set-credentials "$user" --client-certificate="$pki/$user.crt" \
    --client-key="$pki/$user.key" --embed-certs=true >/dev/null
  KUBECONFIG=$file kubectl config set-context coderstack-testbed --cluster=coderstack-testbed --user="$user" >/dev/null
  KUBECONFIG=$file kubectl config use-context coderstack-testbed >/dev/null
  chmod 600 "$file"
}
kubeconfig "$state/kubeconfig" admin
kubeconfig "$pki/controller-manager.kubeconfig" controller-manager
kubeconfig "$pki/scheduler.kubeconfig" scheduler
kubeconfig "$pki/kwok.kubeconfig" kwok
kubeconfig "$pki/kubelet.kubeconfig" kubelet
kubeconfig "$pki/kube-proxy.kubeconfig" kube-proxy
export KUBECONFIG=$state/kubeconfig

# --- control plane --------------------------------------------------------------------------
start_daemon etcd etcd --name testbed --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$TESTBED_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$TESTBED_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" \
  --initial-cluster "testbed=http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" --listen-metrics-urls "" \
  --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
wait_for "etcd on 127.0.0.1:$TESTBED_ETCD_PORT" 30 curl -fsS "http://127.0.0.1:$TESTBED_ETCD_PORT/health" \
  || { tail -n 30 "$state/logs/etcd.log" >&2; die "etcd did not become healthy"; }

start_daemon kube-apiserver kube-apiserver --etcd-servers "http://127.0.0.1:$TESTBED_ETCD_PORT" \
  --bind-address "$TESTBED_NODE_IP" --advertise-address "$TESTBED_NODE_IP" --secure-port "$TESTBED_APISERVER_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$TESTBED_SERVICE_CIDR" --authorization-mode Node,RBAC --allow-privileged=true \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
  --profiling=false --v=1 \
  --disable-admission-plugins TaintNodesByCondition
wait_for "kube-apiserver on $server (/readyz)" 90 curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz" \
  || { tail -n 40 "$state/logs/kube-apiserver.log" >&2; die "kube-apiserver did not become ready"; }

start_daemon kube-controller-manager kube-controller-manager --kubeconfig "$pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$pki/controller-manager.kubeconfig" --authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --use-service-account-credentials=true --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
  --controllers '*,-nodeipam,-nodelifecycle' --v=1
start_daemon kube-scheduler kube-scheduler --kubeconfig "$pki/scheduler.kubeconfig" \
  --authentication-kubeconfig "$pki/scheduler.kubeconfig" --authorization-kubeconfig "$pki/scheduler.kubeconfig" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --v=1
start_daemon kwok kwok --kubeconfig "$pki/kwok.kubeconfig" --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake --cidr "$TESTBED_KWOK_CIDR" --node-ip 127.0.0.1 \
  --node-lease-duration-seconds 40 --server-address ""

# --- cluster content: simulated nodes, storage, testbed marker ------------------------------
nodes=${TESTBED_NODES:-3}
{
  for i in $(seq 1 "$nodes"); do cat <<YAML
apiVersion: v1
kind: Node
metadata:
  name: testbed-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/os: linux, kubernetes.io/arch: amd64, kubernetes.io/hostname: testbed-node-$i, type: kwok}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
status:
  capacity: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 200Gi}
  allocatable: {cpu: "16", memory: 64Gi, pods: "110", ephemeral-storage: 200Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake}
---
YAML
  done
  cat <<YAML
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: coderstack.io/testbed-hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
---
# The kube-apiserver calls kubelets (logs, exec, port-forward) with this client certificate.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: coderstack-testbed-apiserver-kubelet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kubelet-api-admin"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-apiserver-kubelet-client}]
YAML
} >"$state/cluster.yaml"
kubectl apply --server-side --field-manager coderstack-testbed -f "$state/cluster.yaml" >/dev/null
start_daemon provisioner "$repo/.venv/bin/python" "$testbed_here/provisioner.py" --kubeconfig "$state/kubeconfig" \
  --root "$state/volumes" --provisioner coderstack.io/testbed-hostpath
wait_for "$nodes simulated nodes to be Ready" 60 bash -c \
  "[ \$(kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}' | grep -c True) -ge $nodes ]" \
  || { kubectl get nodes -o wide >&2 || true; tail -n 30 "$state/logs/kwok.log" >&2; die "simulated nodes did not become Ready"; }
wait_for "the default service account in namespace default" 60 kubectl get serviceaccount default \
  || { tail -n 30 "$state/logs/kube-controller-manager.log" >&2; die "kube-controller-manager is not creating service accounts"; }
log "control plane ready at $server in $((SECONDS - t0))s (kubeconfig $state/kubeconfig)"

# --- extra services (registry, PostgreSQL, images, the real node, DNS and ingress) -------------
for svc in "$testbed_here"/svc_*.sh; do
  [ -e "$svc" ] || continue
  [ -n "${TESTBED_SKIP_SERVICES:-}" ] && break
  bash "$svc" start
done
log "testbed up in $((SECONDS - t0))s"
