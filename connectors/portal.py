"""The citizen portal: records of each collection changed since a watermark.

A source is a plain generator of raw items (line number, raw text, parsed
object or None). ``file://`` bases read the JSON Lines export folder; the HTTP
API client lives in ``connectors.portal_http``. ``updated_since`` is inclusive
and compared as an instant, never as text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class RawItem:
    line_no: int
    payload: str
    item: dict | None


def parse_instant(value) -> dt.datetime | None:
    """An ISO 8601 timestamp with offset as an aware datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def instant_key(item: dict | None) -> dt.datetime | None:
    if not isinstance(item, dict):
        return None
    return parse_instant(item.get("updated_at"))


def folder_of(base: str) -> Path:
    u = urlparse(base)
    if u.scheme != "file":
        raise ValueError(f"not a file:// portal base: {base}")
    return Path(unquote(u.path))


class PortalExportFolder:
    """A folder of ``{collection}.jsonl`` files, one object per line."""

    def __init__(self, base: str):
        self.folder = folder_of(base)

    def items(self, collection: str, since: dt.datetime | None) -> Iterator[RawItem]:
        path = self.folder / f"{collection}.jsonl"
        if not path.exists():
            return
        with path.open("r", encoding="utf-8", errors="surrogateescape") as fh:
            for n, line in enumerate(fh, start=1):
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                try:
                    item = json.loads(text)
                except ValueError:
                    item = None
                if since is not None:
                    t = instant_key(item)
                    if t is not None and t < since:
                        continue
                yield RawItem(n, text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                              item)


def open_portal(base: str, token: str | None = None):
    """The portal source for a base URL: export folder or HTTP API."""
    if base.startswith("file://"):
        return PortalExportFolder(base)
    from connectors.portal_http import PortalAPI

    return PortalAPI(base, token=token)
