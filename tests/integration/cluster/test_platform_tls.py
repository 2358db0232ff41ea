"""TLS inside the platform on the testbed install: one kept platform CA (name-constrained), PostgreSQL that refuses
connections without TLS while Coder and a verifying client connect, and a forced renewal that keeps the CA."""

from __future__ import annotations

import base64
import datetime
import subprocess
import time
from contextlib import closing

import pytest
import requests
from helpers.pki import certificate, pem

NS = "coder"


def _secret(core, name: str) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (core.read_namespaced_secret(name, NS).data or {}).items()}


def _db(core) -> tuple[str, str]:
    """The database URL Coder uses, and the address of PostgreSQL's pod (the control host reaches it on the bridge)."""
    url = _secret(core, "coder-db-url")["url"].decode()
    return url, core.read_namespaced_pod("coder-db-0", NS).status.pod_ip


def _connect(url: str, pod_ip: str, **params):
    """The URL's connection (its host name is what the certificate is checked for), to the pod's address."""
    import psycopg2

    return psycopg2.connect(url, hostaddr=pod_ip, connect_timeout=10, **params)


def _write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _served_certificate(pod_ip: str) -> bytes:
    """The certificate PostgreSQL presents in its TLS handshake (openssl's STARTTLS for postgres)."""
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "postgres", "-connect", f"{pod_ip}:5432", "-showcerts"],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    ).stdout
    start = out.index(b"-----BEGIN CERTIFICATE-----")
    return out[start : out.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")]


def _leaf(ca_pem: bytes, ca_key_pem: bytes, name: str) -> bytes:
    """A server certificate for NAME signed with the platform CA's own key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    return pem(certificate(name, x509.load_pem_x509_certificate(ca_pem), ca_key, dns=(name,))[0])


def _openssl_verify(tmp_path, ca_pem: bytes, leaf_pem: bytes) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", _write(tmp_path, "ca.pem", ca_pem), _write(tmp_path, "leaf.pem", leaf_pem)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_one_kept_platform_ca_signs_the_ingress_and_the_database(converged, core, tmp_path):
    from cryptography import x509

    ca = _secret(core, "coderstack-ca")
    assert set(ca) == {"tls.crt", "tls.key"}
    assert _secret(core, "coder-tls")["ca.crt"].strip() == ca["tls.crt"].strip()
    assert _secret(core, "coder-db-tls")["ca.crt"].strip() == ca["tls.crt"].strip()
    cert = x509.load_pem_x509_certificate(ca["tls.crt"])
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    domain = _secret(core, "coder-tls")["tls.crt"]
    domain = x509.load_pem_x509_certificate(domain).subject.rfc4514_string().removeprefix("CN=")
    assert constraints.critical
    assert {n.value for n in constraints.value.permitted_subtrees} == {domain, f"{NS}.svc", f"{NS}.svc.cluster.local"}
    # the constraint binds even the CA's own key: a certificate it signs for another name does not verify, while
    # one it signs for a name of the domain does (the control)
    inside = _openssl_verify(tmp_path, ca["tls.crt"], _leaf(ca["tls.crt"], ca["tls.key"], f"x.{domain}"))
    assert inside.returncode == 0, inside.stdout + inside.stderr
    outside = _openssl_verify(tmp_path, ca["tls.crt"], _leaf(ca["tls.crt"], ca["tls.key"], "bank.example.org"))
    assert outside.returncode != 0 and "permitted subtree violation" in outside.stdout + outside.stderr


def test_postgresql_refuses_plain_connections_and_verifies_with_the_platform_ca(converged, core, tmp_path):
    import psycopg2

    url, pod_ip = _db(core)
    assert "sslmode=verify-full" in url
    ca = _write(tmp_path, "db-ca.crt", _secret(core, "coder-db-tls")["ca.crt"])
    # control: the URL's connection, verified against the platform CA for the URL's host name, is encrypted
    with closing(_connect(url, pod_ip, sslrootcert=ca)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ssl, version = cur.fetchone()
        assert ssl is True and version in ("TLSv1.2", "TLSv1.3")
        # Coder's own sessions (from its pod) are encrypted too, every one of them
        coder_ips = [
            p.status.pod_ip
            for p in core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=coder").items
            if p.status.phase == "Running"
        ]
        cur.execute(
            "SELECT s.ssl, count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
            " WHERE host(a.client_addr) = ANY(%s) GROUP BY s.ssl",
            (coder_ips,),
        )
        sessions = dict(cur.fetchall())
        assert sessions.get(True, 0) >= 1 and sessions.get(False, 0) == 0, sessions
    # the same credentials without TLS are refused by the server's client rules
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        _connect(url, pod_ip, sslmode="disable")
    # and a client that trusts another CA refuses the server's certificate
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        _connect(url, pod_ip, sslrootcert=_write(tmp_path, "other-ca.crt", _self_signed("other CA")))


def _self_signed(name: str) -> bytes:
    return pem(certificate(name, ca=True)[0])


def test_forced_renewal_keeps_the_ca_and_postgresql_serves_it(converged, core, kube, playbook, testbed):
    from cryptography import x509

    ca_before = _secret(core, "coderstack-ca")["tls.crt"]
    before = _secret(core, "coder-db-tls")
    # renewed now: the certificate ends within postgres_cert_renew_days (one day more than it has left)
    left = x509.load_pem_x509_certificate(before["tls.crt"]).not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    renew = {"postgres_cert_valid_days": left.days + 40, "postgres_cert_renew_days": left.days + 1}
    result = playbook("playbooks/postgres.yml", extra_vars=renew)
    assert result.rc == 0, result.output[-3000:]
    after = _secret(core, "coder-db-tls")
    assert after["tls.crt"] != before["tls.crt"] and after["tls.key"] != before["tls.key"]
    assert after["ca.crt"] == before["ca.crt"] and _secret(core, "coderstack-ca")["tls.crt"] == ca_before
    leaf = x509.load_pem_x509_certificate(after["tls.crt"])
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == left.days + 40
    # PostgreSQL was restarted with it (the StatefulSet's checksum annotation): it serves the new certificate
    _, pod_ip = _db(core)
    served = x509.load_pem_x509_certificate(_served_certificate(pod_ip))
    assert served.serial_number == leaf.serial_number
    # Coder, not restarted, reconnects through the same CA (once the new pod's address is in the cluster's DNS). Until
    # then a request may also hang: connections of Coder's pool to the old pod's address get no answer at all (seen
    # with Coder 2.36 as a 30 s read timeout), so timeouts are waited out too, for up to 3 minutes
    deadline = time.monotonic() + 180
    while True:
        try:
            assert "id" in testbed.coder(kube, "/api/v2/users/me")
            break
        except (requests.HTTPError, requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    # a renewed, valid certificate is kept: the default settings change nothing
    again = playbook("playbooks/postgres.yml")
    assert again.rc == 0 and again.changed == 0, again.output[-3000:]
