"""The citizen portal's HTTP JSON API.

``GET {base}/api/v1/{collection}?updated_since=&cursor=&limit=`` with a bearer
token, cursor pagination, ``Retry-After`` on 429/503, exponential back-off with
a cap and a total deadline, connect and read timeouts; https:// only (plain http:// is
refused except on the loopback, for tests), certificates always verified.
Items repeated by the server (at a page boundary or a replayed page) are
yielded once, in bounded memory (``Repeats``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from connectors.portal import RawItem, instant_key

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PortalError(Exception):
    pass


class Repeats:
    """Which items the server has already sent, without keeping one digest per item.

    Items come ordered by ``(updated_at, id)`` (SOURCES.md), ``updated_at`` compared as an
    instant. Kept: the digests of the items at the latest instant sent (a repeat at the
    boundary of ``updated_since`` or of a page) and of the last ``window`` items (a page
    sent again). An earlier item outside both was, by the spec's order, sent before; it is
    yielded all the same and counted in ``out_of_order``: a duplicate goes to quarantine
    as superseded, where a wrong guess would lose an item for good. Memory is bounded by
    ``window`` plus the largest group of items sharing one instant."""

    def __init__(self, window: int):
        self.window = window
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.latest: dt.datetime | None = None
        self.at_latest: set[str] = set()
        self.out_of_order = 0

    def first_time(self, digest: str, instant: dt.datetime | None) -> bool:
        """True (and remembered) the first time an item is seen; False for a repeat."""
        if digest in self.recent or (instant is not None and instant == self.latest
                                     and digest in self.at_latest):
            return False
        self.recent[digest] = None
        if len(self.recent) > self.window:
            self.recent.popitem(last=False)
        if instant is not None:
            if self.latest is None or instant > self.latest:
                self.latest, self.at_latest = instant, {digest}
            elif instant == self.latest:
                self.at_latest.add(digest)
            else:
                self.out_of_order += 1
        return True


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
        self.repeats = seen = Repeats(4 * self.page_size)
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
                if not seen.first_time(digest, instant_key(item)):
                    continue  # the server repeated it
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
