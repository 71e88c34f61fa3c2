"""Ctrl-C around work that must finish whole: a notebook's output with its manifest entry, the
swap of the published site.

``research.pipeline.runner`` (the run) and ``research.pipeline.render`` (the swap) both use
these; neither imports the other for them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["interrupt_deferred", "sigint_handled"]


@contextlib.contextmanager
def sigint_handled(handler: Any) -> Iterator[None]:
    """SIGINT handled by ``handler`` for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done (a notebook's output and its manifest entry
    are kept together, or neither), then raise it."""
    caught: list[int] = []
    old = signal.getsignal(signal.SIGINT)
    with sigint_handled(lambda signum, frame: caught.append(signum)):
        yield
    if caught and callable(old):
        old(signal.SIGINT, None)
