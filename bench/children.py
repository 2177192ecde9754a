"""What every benchmark script needs to measure a step in a process of its own."""

from __future__ import annotations

import multiprocessing as mp
import resource

#: spawn, not fork: a child starts from a fresh interpreter, so its peak RSS is its own
CTX = mp.get_context("spawn")


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(target, *args, strict: bool = True) -> dict:
    """``target(*args, queue)`` in a spawned child; the dict it puts on the queue.

    A child that dies without answering is reported rather than waited for forever:
    ``{"error": ...}``, or SystemExit when ``strict``."""
    q = CTX.Queue()
    p = CTX.Process(target=target, args=(*args, q))
    p.start()
    try:
        while True:
            try:
                return q.get(timeout=5)
            except Exception:  # noqa: BLE001 - queue.Empty: is the child still alive?
                if not p.is_alive():
                    if strict:
                        raise SystemExit(f"{getattr(target, '__name__', target)} exited "
                                         f"with code {p.exitcode}") from None
                    return {"error": f"child exited with code {p.exitcode}"}
    finally:
        p.join()
