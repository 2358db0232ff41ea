#!/usr/bin/env bash
# The testbed's container registry: Debian's docker-registry (distribution v2) on the node IP
# ($TESTBED_REGISTRY: the host pushes there, the real node's containerd pulls from there) with TLS (self-signed CA + server cert, openssl) and htpasswd
# (bcrypt) auth. Everything it owns lives in $state/registry/ (generated once, kept across restarts):
#   tls/        ca.key ca.crt server.key server.crt
#   ca/ca.crt   the CA alone: a --cert-dir for podman/buildah/skopeo
#   username, password (0600), htpasswd, config.yml, data/ (the blobs)
# and $state/registry-url ($TESTBED_REGISTRY), $state/registry-ca (path of the CA file).
# Usage: svc_10_registry.sh start|stop|status
set -euo pipefail
# shellcheck source=testbed/lib.sh
. "$(dirname "$0")/lib.sh"

dir="$state/registry"
addr=$TESTBED_REGISTRY

generate() {
  mkdir -p "$dir/tls" "$dir/ca" "$dir/data"
  chmod 0700 "$dir/tls"
  if [ -s "$dir/tls/server.crt" ] && ! openssl x509 -in "$dir/tls/server.crt" -noout -ext subjectAltName | grep -q "IP Address:$TESTBED_NODE_IP\b"; then
    rm -f "$dir/tls/server.crt"   # from before the registry listened on the node IP
  fi
  # a CA from before it carried keyUsage, which Python >= 3.13 refuses (the current-Ansible lane): made again
  if [ -s "$dir/tls/ca.crt" ] && ! openssl x509 -in "$dir/tls/ca.crt" -noout -ext keyUsage 2>/dev/null | grep -q "Certificate Sign"; then
    rm -f "$dir/tls/ca.key" "$dir/tls/ca.crt" "$dir/tls/server.crt"
  fi
  if [ ! -s "$dir/tls/server.crt" ]; then
    log "registry: generating a CA and a server certificate for $TESTBED_NODE_IP, 127.0.0.1 and localhost"
    [ -s "$dir/tls/ca.key" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=coderstack testbed registry CA" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n%s\n' "$TESTBED_NODE_IP" \
      'subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer' >"$dir/tls/server.ext"
    openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" \
      -CAcreateserial -days 825 -extfile "$dir/tls/server.ext" -out "$dir/tls/server.crt" 2>/dev/null
    chmod 0600 "$dir/tls/ca.key" "$dir/tls/server.key"
  fi
  cp "$dir/tls/ca.crt" "$dir/ca/ca.crt"
  if [ ! -s "$dir/password" ]; then
    log "registry: generating the credentials (user coderstack)"
    echo coderstack >"$dir/username"
    (umask 077 && openssl rand -hex 24 >"$dir/password")
    rm -f "$dir/htpasswd"
  fi
  chmod 0600 "$dir/password"
  if [ ! -s "$dir/htpasswd" ]; then
    # bcrypt (-B): the only hash distribution's htpasswd backend accepts
    (umask 077 && htpasswd -Bbn "$(cat "$dir/username")" "$(cat "$dir/password")" >"$dir/htpasswd")
  fi
  cat >"$dir/config.yml" <<CFG
# Written by testbed/svc_10_registry.sh
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  secret: $(openssl rand -hex 16)
  tls:
    certificate: $dir/tls/server.crt
    key: $dir/tls/server.key
auth:
  htpasswd:
    realm: coderstack-testbed
    path: $dir/htpasswd
CFG
  chmod 0600 "$dir/config.yml"
  echo "$addr" >"$state/registry-url"
  echo "$dir/ca/ca.crt" >"$state/registry-ca"
}

healthy() {
  # /v2/ answers 401 without credentials when the registry is up
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca/ca.crt" "https://$addr/v2/" || true)
  [ "$code" = 401 ] || [ "$code" = 200 ]
}

case "${1:-}" in
  start)
    command -v docker-registry >/dev/null || die "docker-registry is missing (testbed/apt-packages.txt; run scripts/setup.sh)"
    bash "$(dirname "$0")/build_image_base.sh" conf   # the podman config the image tests use
    t0=$SECONDS
    generate
    start_daemon registry docker-registry serve "$dir/config.yml"
    wait_for "registry on https://$addr" 30 healthy || { tail -n 30 "$state/logs/registry.log" >&2; die "registry did not answer on https://$addr/v2/"; }
    log "registry answers on https://$addr (CA $dir/ca/ca.crt) in $((SECONDS - t0))s"
    ;;
  stop)
    stop_daemon registry
    ;;
  status)
    if healthy; then echo "registry: up on https://$addr"; else echo "registry: down"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
