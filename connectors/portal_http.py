"""The citizen portal's HTTP JSON API.

``GET {base}/api/v1/{collection}?updated_since=&cursor=&limit=`` with a bearer
token, cursor pagination, ``Retry-After`` on 429/503, exponential back-off with
a cap and a total deadline, connect and read timeouts; https:// only (plain http:// is
refused except on the loopback, for tests), certificates always verified.
Items repeated by the server (at a page boundary or a replayed page) are
yielded once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from connectors.portal import RawItem

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PortalError(Exception):
    pass


class PortalAPI:
    def __init__(self, base: str, token: str | None = None, *, page_size: int = 500,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 max_backoff: float = 30.0, deadline: float = 600.0,
                 session: requests.Session | None = None):
        if not base.startswith(("https://", "http://")):
            raise ValueError(f"portal base must be http(s):// or file://, got {base!r}")
        host = urlsplit(base).hostname or ""
        if base.startswith("http://") and host not in LOOPBACK:
            # the bearer token and residents' data never travel in clear text
            raise ValueError(f"portal base {base!r}: the portal API is reached over https:// "
                             "(plain http:// only on this machine's loopback, for tests)")
        self.base = base.rstrip("/")
        self.page_size = page_size
        self.timeout = (connect_timeout, read_timeout)
        self.max_backoff = max_backoff
        self.deadline = deadline
        self.session = session or requests.Session()
        self.session.verify = True  # never turned off
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"

    def _get(self, url: str, params: dict, started: float) -> dict:
        attempt = 0
        while True:
            attempt += 1
            wait = None
            try:
                r = self.session.get(url, params=params, timeout=self.timeout)
                if r.status_code in (429, 503):
                    wait = _retry_after(r.headers.get("Retry-After"))
                    problem = f"HTTP {r.status_code}"
                elif r.status_code >= 500:
                    problem = f"HTTP {r.status_code}"
                elif r.status_code in (401, 403):
                    raise PortalError(f"{url}: HTTP {r.status_code}: the portal refused the token "
                                      "(check the *_TOKEN environment variable)")
                elif r.status_code != 200:
                    raise PortalError(f"{url}: HTTP {r.status_code}: {r.text[:200]}")
                else:
                    try:
                        body = r.json()
                    except ValueError:
                        problem = "page is not valid JSON (truncated?)"
                    else:
                        if isinstance(body, dict) and isinstance(body.get("items"), list):
                            return body
                        problem = "page has no 'items' list"
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            # the server's Retry-After is honoured as given; otherwise back off, capped
            if wait is None:
                wait = min(self.max_backoff, 0.5 * 2 ** (attempt - 1))
            if time.monotonic() - started + wait > self.deadline:
                raise PortalError(f"{url}: giving up after {attempt} attempts within "
                                  f"{self.deadline:.0f} s; last problem: {problem}")
            time.sleep(wait)

    def items(self, collection: str, since: dt.datetime | None) -> Iterator[RawItem]:
        url = f"{self.base}/api/v1/{collection}"
        started = time.monotonic()
        cursor = None
        seen: set[str] = set()
        n = 0
        while True:
            params = {"limit": self.page_size}
            if since is not None:
                params["updated_since"] = since.isoformat()
            if cursor:
                params["cursor"] = cursor
            page = self._get(url, params, started)
            for item in page["items"]:
                payload = json.dumps(item, ensure_ascii=False, sort_keys=True)
                digest = hashlib.sha256(payload.encode()).hexdigest()
                if digest in seen:
                    continue  # the server repeated it
                seen.add(digest)
                n += 1
                yield RawItem(n, payload, item if isinstance(item, dict) else None)
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
