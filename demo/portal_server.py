"""A stand-in of the citizen portal's HTTP API, serving a simulated town's export folder.

Real HTTP on 127.0.0.1, bearer token, ``updated_since`` inclusive, items
ordered by (instant of ``updated_at``, ``id``), opaque keyset cursors, and
faults to inject on demand: 429 / 503 with ``Retry-After``, a connection
dropped in the middle of a page, a malformed item, a page that repeats items.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Faults:
    """How many times each fault is still to be injected (counts go down as they fire)."""

    too_many_requests: int = 0
    unavailable: int = 0
    drop_connection: int = 0
    malformed_item: int = 0
    repeat_page: int = 0
    retry_after: str = "0"
    log: list = field(default_factory=list)


def _instant(item: dict) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(item.get("updated_at"))
        return t if t.tzinfo else EPOCH
    except (TypeError, ValueError):
        return EPOCH


def _key(item: dict) -> tuple:
    return (_instant(item), str(item.get("id") or f"{item.get('day')}|{item.get('space')}"))


def _encode_cursor(key: tuple) -> str:
    raw = json.dumps([key[0].isoformat(), key[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(c: str) -> tuple:
    t, i = json.loads(base64.urlsafe_b64decode(c.encode()))
    return dt.datetime.fromisoformat(t), i


class PortalStandIn:
    def __init__(self, folder: Path, token: str = "test-token", port: int = 0):
        self.folder = Path(folder)
        self.token = token
        self.faults = Faults()
        self.requests = 0
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                stand_in.requests += 1
                stand_in.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _items(self, collection: str) -> list[dict]:
        path = self.folder / f"{collection}.jsonl"
        out = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # the API serves objects; broken export lines are not served
                if isinstance(item, dict):
                    out.append(item)
        return sorted(out, key=_key)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        f = self.faults
        u = urlparse(h.path)
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"error": "unauthorized"})
        if f.too_many_requests > 0:
            f.too_many_requests -= 1
            f.log.append("429")
            return self._send(h, 429, {"error": "slow down"}, {"Retry-After": f.retry_after})
        if f.unavailable > 0:
            f.unavailable -= 1
            f.log.append("503")
            return self._send(h, 503, {"error": "maintenance"}, {"Retry-After": f.retry_after})
        parts = u.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "v1"]:
            return self._send(h, 404, {"error": "not found"})
        q = parse_qs(u.query)
        limit = max(1, min(int(q.get("limit", ["100"])[0]), 1000))
        items = self._items(parts[2])
        if "updated_since" in q:
            since = dt.datetime.fromisoformat(q["updated_since"][0])
            items = [i for i in items if _instant(i) >= since]
        start = 0
        if "cursor" in q:
            after = _decode_cursor(q["cursor"][0])
            start = next((n for n, i in enumerate(items) if _key(i) > after), len(items))
        page = items[start:start + limit]
        nxt = _encode_cursor(_key(page[-1])) if start + limit < len(items) and page else None
        if f.repeat_page > 0 and start > 0:
            f.repeat_page -= 1
            f.log.append("repeat")
            page = items[max(0, start - 3):start] + page  # items of the previous page again
        body = json.dumps({"items": page, "next_cursor": nxt}).encode()
        if f.drop_connection > 0:
            f.drop_connection -= 1
            f.log.append("drop")
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        if f.malformed_item > 0 and page:
            f.malformed_item -= 1
            f.log.append("malformed")
            page = page + [{"id": "malformed-" + str(self.requests), "updated_at": "yesterday"}]
        body = json.dumps({"items": page, "next_cursor": nxt}).encode()
        self._send_bytes(h, 200, body)

    def _send(self, h, status, obj, headers=None):
        self._send_bytes(h, status, json.dumps(obj).encode(), headers)

    @staticmethod
    def _send_bytes(h, status, body, headers=None):
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
