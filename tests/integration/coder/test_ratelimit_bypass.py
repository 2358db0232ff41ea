"""Coder's rate limits and the owner's bypass, on a real Coder (a throwaway server on loopback).

Coder lets each user upload 12 files a minute (a template version is one upload). coderstack's admin is the owner,
and with bypass_ratelimit its requests carry X-Coder-Bypass-Ratelimit, which Coder honours for owners only: bulk
imports are not throttled. (Since Coder 2.35 the API-wide limiter knows the user too, from a pre-check of the API key,
so the header lifts the 512 requests a minute as well as the files limit.) The same burst
without the header meets the limit (the positive control of the limit itself), and a member's token with the header
is refused with the reason the module then gives.
"""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest
from ansible_collections.coderstack.platform.plugins.module_utils.coder_client import CoderClient, CoderError
from ansible_collections.coderstack.platform.plugins.module_utils.coder_module import failure_message

pytestmark = pytest.mark.slow
BURST = 14  # more than the 12 uploads a minute Coder allows one user


def tar_bytes() -> bytes:
    """A distinct small tar each time (Coder deduplicates identical uploads by hash)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"# {uuid.uuid4()}\n".encode()
        info = tarfile.TarInfo("main.tf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def burst(client: CoderClient) -> list[int]:
    for _ in range(BURST):
        client.upload_file(tar_bytes())
    return [status for method, _path, status in client.call_log if method == "POST"]


def test_the_owners_bulk_uploads_skip_the_limit_that_stops_the_same_burst_without_it(coder_server):
    waits = []
    limited = CoderClient(
        coder_server.url,
        token=coder_server.admin_token,
        rate_limit_wait_max=0.0,
        rate_limit_backoff=0.0,
        retries=0,
        sleep=waits.append,
    )
    with pytest.raises(CoderError) as refused:
        burst(limited)
    assert refused.value.status == 429, refused.value  # the positive control: the limit is there
    owner = CoderClient(coder_server.url, token=coder_server.admin_token, bypass_ratelimit=True)
    assert burst(owner) == [201] * BURST


def test_a_members_token_with_the_bypass_is_refused_with_the_reason(coder_server, admin_client):
    name = "member-" + uuid.uuid4().hex[:6]
    admin_client.create_user(name, f"{name}@it.example.com", password="Member-Pass-" + uuid.uuid4().hex[:12])
    token = admin_client.create_token(name, "it-member", 3600)
    member = CoderClient(coder_server.url, token=token, bypass_ratelimit=True)
    with pytest.raises(CoderError) as refused:
        member.upload_file(tar_bytes())
    assert refused.value.status == 428, refused.value
    assert "owner" in str(refused.value)
    assert "bypass_ratelimit is honoured for a token of a user with the owner role only" in failure_message(
        "reading the user", refused.value
    )
    # the same token without the header works (the refusal is the header's, not the token's)
    assert CoderClient(coder_server.url, token=token).upload_file(tar_bytes())
