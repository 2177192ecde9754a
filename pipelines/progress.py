"""A tiny progress hook: the CLI listens, steps and assets announce what they start."""

from __future__ import annotations

from collections.abc import Callable

_listener: Callable[[str], None] | None = None


def listen(fn: Callable[[str], None] | None) -> None:
    global _listener
    _listener = fn


def announce(step: str) -> None:
    if _listener is not None:
        _listener(step)
