# -*- coding: utf-8 -*-
# Copyright: coderstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The transport of the Coder client: one HTTP request to Coder's API, its retries and the classification of what
came back (Python standard library only). The endpoints are in ``coder_client.py``.

* ``Coder-Session-Token`` header when a token is set. ``bypass_ratelimit``: requests with the client's own token
  also carry ``X-Coder-Bypass-Ratelimit: true``, which Coder honours for a user with the owner role only (anyone
  else's request is refused with 428); a call with another token (``token=``) never carries it.
* Errors: Coder answers ``{"message", "detail", "validations": [{"field", "detail"}]}``; :class:`CoderError`
  turns that into one readable sentence naming the method, path and HTTP status.
* Retries (bounded, exponential backoff, ``Retry-After`` honoured up to ``backoff_max``) only where repeating the
  request is safe. A 429 waits out the rate limiter's window instead: ``Retry-After`` (else ``X-Ratelimit-Reset``)
  honoured up to ``rate_limit_wait_max``, else a backoff from ``rate_limit_backoff`` (Coder's limiters count per
  minute, e.g. 12 file uploads: a bulk template import meets it):

  - idempotent methods (GET/HEAD/PUT/DELETE/OPTIONS): on 500, 502, 503, 504, connection errors and timeouts;
  - every method, POST and PATCH included: on 429 (the rate limiter refused the request before it was handled)
    and on a connection error raised before the request was sent (connection refused, unknown host);
  - a POST or PATCH is never replayed after it may have reached the server (a timeout, a reset connection, a 5xx
    answer: the server may have acted, and a replay would turn a create into a 409). The error then says so;
  - idempotent methods, too, on a 404 that is not Coder's (no JSON body) once an earlier attempt found Coder
    unavailable: an ingress controller answers so while Coder restarts (it drops the route of a backend without
    ready endpoints). Modules retry 6 times (about 23 s of backoff), enough to ride out a restart of Coder.
* TLS verification on by default; ``ca_path`` adds a CA bundle, ``validate_certs=False`` turns it off. A caller
  that reaches Coder through something else (the API server's service proxy: ``kube.ServiceProxy``) passes its
  ``ssl_context`` and ``extra_headers`` instead.
* ``calls`` counts API calls per HTTP method (a ``collections.Counter``; retries count too), ``call_log`` lists
  ``(method, path, status)``: tests and benchmarks use them to count calls.
"""

import http.client
import json as _json
import socket
import ssl
import time
from collections import Counter

try:  # Python 3
    from urllib.error import HTTPError, URLError
    from urllib.parse import urlencode, urlsplit
    from urllib.request import HTTPSHandler, Request, build_opener
except ImportError:  # pragma: no cover - Python 2 is not supported by the modules that use this
    raise

# Answers after which the request was not handled (the rate limiter refused it): safe to resend for every method.
RETRY_ALWAYS_STATUSES = (429,)
# Answers after which the server may have acted: resent only for idempotent methods.
RETRY_IDEMPOTENT_STATUSES = (500, 502, 503, 504)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
# Coder lets a user with the owner role skip its rate limits with this header (codersdk.BypassRatelimitHeader).
BYPASS_RATELIMIT_HEADER = "X-Coder-Bypass-Ratelimit"
# Network errors raised before a byte of the request left (nothing reached the server).
NOT_SENT_ERRORS = (ConnectionRefusedError, socket.gaierror)
_UNSET = object()


def _is_json(headers, raw):
    """Whether an answer is JSON (every answer of Coder's API is; a proxy's own error pages are not)."""
    ctype = (headers.get("Content-Type") if headers else "") or ""
    return "json" in ctype or (raw or b"")[:1] in (b"{", b"[")


def _rate_limit_reset(headers):
    """Seconds a 429 asks to wait: Retry-After, else X-Ratelimit-Reset (a Unix time), else None."""
    if not headers:
        return None
    if headers.get("Retry-After"):
        return headers.get("Retry-After")
    reset = headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return str(float(reset) - time.time() + 1)
        except ValueError:
            return None
    return None


class CoderError(Exception):
    """An API call failed; ``str()`` is a readable sentence."""

    def __init__(self, method, path, status=None, message=None, detail=None, validations=None, body=None, note=None):
        self.method = method
        self.path = path
        self.status = status
        self.message = message or ""
        self.detail = detail or ""
        self.validations = validations or []
        self.body = body
        self.note = note or ""
        super().__init__(self.__str__())

    def __str__(self):
        where = f"{self.method} {self.path}"
        if self.status is None:
            text = "{} failed: {}".format(where, self.message or "no answer")
        else:
            text = f"{where} returned HTTP {self.status}"
            if self.message:
                text += ": {}".format(self.message.rstrip("."))
        if self.detail:
            text += f" ({self.detail})"
        if self.validations:
            parts = []
            for v in self.validations:
                if isinstance(v, dict):
                    parts.append("{}: {}".format(v.get("field", "?"), v.get("detail", "")))
                else:
                    parts.append(str(v))
            text += "; invalid fields: " + "; ".join(parts)
        if self.note:
            text += f"; {self.note}"
        return text

    @property
    def not_found(self):
        """True for 404 and for Coder's 400 "user must be an existing uuid or username"."""
        if self.status == 404:
            return True
        return self.status == 400 and "must be an existing" in self.message


class NotCoderError(CoderError):
    """Something answers at ``coder_url``, but it is not a Coder deployment."""

    def __init__(self, url, path, status, content_type):
        self.url = url
        self.content_type = content_type or "no content type"
        super().__init__("GET", path, status)

    def __str__(self):
        return (
            f"{self.url} is not a Coder deployment: GET {self.path} answered HTTP {self.status} "
            f"({self.content_type}) instead of Coder's JSON build info with a version; check coder_url "
            "(the base URL of Coder, e.g. https://coder.example.com, without /api/v2)"
        )


class CoderTransport:
    """Requests to one Coder deployment: URL, TLS, token, retries, call counts."""

    def __init__(
        self,
        url,
        token=None,
        ca_path=None,
        validate_certs=True,
        timeout=30,
        retries=4,
        backoff=0.5,
        backoff_max=8.0,
        rate_limit_backoff=5.0,
        rate_limit_wait_max=65.0,
        user_agent="coderstack",
        sleep=time.sleep,
        ssl_context=None,
        extra_headers=None,
        bypass_ratelimit=False,
    ):
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"coder_url must be an http:// or https:// URL, got {url!r}")
        if "@" in urlsplit(url).netloc:
            raise ValueError(
                "coder_url must not contain a user or password: Coder authenticates with coder_token or a login, "
                "not with credentials in the URL"
            )
        self.url = url.rstrip("/")
        self.token = token
        self.bypass_ratelimit = bool(bypass_ratelimit)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.rate_limit_backoff = rate_limit_backoff
        self.rate_limit_wait_max = rate_limit_wait_max
        self.user_agent = user_agent
        self._sleep = sleep
        self.calls = Counter()
        self.call_log = []
        self.last_status = None
        self.last_content_type = ""
        # the Date header of the last answer: the server's clock, for ages of what it reports
        self.last_date = ""
        # a callable giving headers every request carries (the API server's credentials behind its service proxy)
        self._extra_headers = extra_headers or dict
        if ssl_context is not None:  # the caller verifies the server (kube.ServiceProxy: the API server's CA)
            self._opener = build_opener(HTTPSHandler(context=ssl_context))
        elif self.url.startswith("https://"):
            if validate_certs:
                ctx = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._opener = build_opener(HTTPSHandler(context=ctx))
        else:
            self._opener = build_opener()

    # ------------------------------------------------------------------ generic
    @property
    def calls_total(self):
        return sum(self.calls.values())

    def request(self, method, path, json=None, data=None, headers=None, expected=(200,), params=None, token=_UNSET):
        """One API call. Returns the decoded JSON body (``None`` when empty, ``bytes`` when not JSON).

        ``path`` is relative to the deployment URL (``/api/v2/...``). ``json`` sends a JSON body, ``data`` raw
        bytes (set ``Content-Type`` in ``headers``). ``token`` overrides the client's token for this call
        (``None`` sends none). Raises :class:`CoderError` when the status is not in ``expected``.
        """
        method = method.upper()
        if isinstance(expected, int):
            expected = (expected,)
        full = self.url + path
        if params:
            full += ("&" if "?" in full else "?") + urlencode(params)
        hdrs = {"Accept": "application/json", "User-Agent": self.user_agent}
        body = None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            body = data
        tok = self.token if token is _UNSET else token
        if tok:
            hdrs["Coder-Session-Token"] = tok
            if self.bypass_ratelimit and token is _UNSET:
                hdrs[BYPASS_RATELIMIT_HEADER] = "true"
        hdrs.update(self._extra_headers())
        hdrs.update(headers or {})

        attempt = 0
        outage = False  # an earlier attempt found Coder unavailable (unreachable, or 502/503/504 from a proxy)
        while True:
            attempt += 1
            self.calls[method] += 1
            status, resp_headers, raw, neterr, not_sent = self._send(method, full, body, hdrs)
            self.last_status = status
            self.last_content_type = (resp_headers.get("Content-Type") if resp_headers else "") or ""
            self.last_date = (resp_headers.get("Date") if resp_headers else "") or ""
            self.call_log.append((method, path, status))
            retry_after = None
            rate_limited = False
            maybe_acted = False  # the server may have acted on a request we do not resend
            if neterr is not None:
                retryable = method in IDEMPOTENT or not_sent
                maybe_acted = not not_sent
            elif status in expected:
                retryable = False
            elif status in RETRY_ALWAYS_STATUSES:
                retryable = rate_limited = True
                retry_after = _rate_limit_reset(resp_headers)
            elif status in RETRY_IDEMPOTENT_STATUSES:
                retryable = method in IDEMPOTENT
                maybe_acted = True
                if retryable:
                    retry_after = resp_headers.get("Retry-After") if resp_headers else None
            elif status == 404 and outage and not _is_json(resp_headers, raw):
                # a proxy's own 404 (not Coder's JSON) while Coder was unavailable: the ingress controller drops the
                # route of a backend without ready endpoints and puts it back when Coder answers again
                retryable = method in IDEMPOTENT
            else:
                retryable = False
            outage = outage or neterr is not None or status in RETRY_IDEMPOTENT_STATUSES
            if retryable and attempt <= self.retries:
                self._sleep(self._delay(attempt, retry_after, rate_limited))
                continue
            break

        note = None
        if maybe_acted and method not in IDEMPOTENT:
            note = (
                f"not retried: a {method} is never sent twice once it may have reached the server (it may have "
                "taken effect): check the object in Coder before running again"
            )
        elif attempt > 1:
            note = f"after {attempt} attempts"
        if neterr is not None:
            raise CoderError(method, path, None, f"cannot reach {self.url}: {neterr}", note=note)
        parsed = self._decode(resp_headers, raw)
        if status not in expected:
            if isinstance(parsed, dict):
                raise CoderError(
                    method,
                    path,
                    status,
                    parsed.get("message"),
                    parsed.get("detail"),
                    parsed.get("validations"),
                    parsed,
                    note=note,
                )
            text = raw.decode("utf-8", "replace").strip()[:300] if raw else ""
            raise CoderError(method, path, status, text or None, body=text, note=note)
        return parsed

    def _delay(self, attempt, retry_after, rate_limited=False):
        cap = self.rate_limit_wait_max if rate_limited else self.backoff_max
        base = self.rate_limit_backoff if rate_limited else self.backoff
        if retry_after:
            try:
                return max(0.0, min(float(retry_after), cap))
            except ValueError:
                pass
        return min(base * (2 ** (attempt - 1)), cap)

    def _send(self, method, url, body, headers):
        """(status, headers, body, network error text or None, True when the request never left)."""
        req = Request(url, data=body, headers=headers, method=method)  # noqa: S310 - scheme checked in __init__
        try:
            resp = self._opener.open(req, timeout=self.timeout)
            try:
                return resp.getcode(), resp.headers, resp.read(), None, False
            finally:
                resp.close()
        except HTTPError as e:
            try:
                raw = e.read()
            except Exception:  # noqa: BLE001 - a broken error body still is an HTTP error
                raw = b""
            return e.code, e.headers, raw, None, False
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets, TLS, broken answers
            reason = getattr(e, "reason", e) if isinstance(e, URLError) else e
            if isinstance(reason, ssl.SSLCertVerificationError):
                msg = (
                    f"TLS verification of {self.url} failed: {reason}; set ca_path to the CA that signed "
                    "Coder's certificate (or validate_certs: false for a throwaway setup)"
                )
                raise CoderError(method, url[len(self.url) :], None, msg) from e
            # urllib wraps errors of connecting and sending in URLError; connection refused and an unknown host
            # happen before any byte is sent. Anything else (timeouts, resets, errors while reading) may come
            # after the server received the request.
            not_sent = isinstance(e, URLError) and isinstance(reason, NOT_SENT_ERRORS)
            text = str(reason) or type(reason).__name__
            if isinstance(reason, TimeoutError) or "timed out" in text:
                text = f"no answer within {self.timeout}s ({text})"
            return None, None, b"", text, not_sent

    @staticmethod
    def _decode(headers, raw):
        if not raw:
            return None
        ctype = (headers.get("Content-Type") if headers else "") or ""
        if "json" in ctype or raw[:1] in (b"{", b"["):
            try:
                return _json.loads(raw.decode("utf-8"))
            except ValueError:
                return raw
        return raw
