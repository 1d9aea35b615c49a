"""The gateway's long-lived state, kept out of the garbage collector's full collections.

A full collection walks every container object of the process with the whole process
paused, every client with it. At 10,000 upstream tools the process holds ~300,000 of
them, most of them the catalogue (the tool definitions, their shapes on the wire, what
policies know of each), and a full collection takes 150 to 550 ms; rebuilding the
catalogue on a policy reload, or shaping it for a first listing, allocates enough to
set one off.

The catalogue lives until it is replaced, so :meth:`LongLivedHeap.settle`, called once
new long-lived state is in place, moves every object alive into the interpreter's
permanent generation (:func:`gc.freeze`), which collections skip: they walk only what
was made since. Objects there are still freed by reference counting (a replaced
catalogue, which holds no reference cycles, is freed as before), but never by the cycle
collector: one that ends in a reference cycle stays (a client's connection open at a
settle and closed later leaves ~80 objects). So the interpreter's heap (its allocated
blocks: counting the frozen objects would walk them all) may grow to ``max_growth``
times its size after the last full collection; a settle past that first collects
everything once, as Python itself would have, and frees those.
"""

from __future__ import annotations

import gc
import sys

MAX_GROWTH = 2.0


class LongLivedHeap:
    """Freezes what is alive after each change of long-lived state; collects in full only
    when the heap has grown ``max_growth`` times since the last full collection."""

    def __init__(self, max_growth: float = MAX_GROWTH) -> None:
        if max_growth <= 1:
            raise ValueError(f"max_growth must be more than 1, not {max_growth}")
        self.max_growth = max_growth
        self._collected_size: int | None = None
        """The heap's allocated blocks right after the last full collection (or the first settle)."""
        self.full_collections = 0
        """Full collections run by :meth:`settle`."""

    def settle(self) -> None:
        """Keep every object alive now out of later collections (see the module's docstring)."""
        size = sys.getallocatedblocks()
        if self._collected_size is None:
            self._collected_size = size
        elif size > self._collected_size * self.max_growth:
            gc.unfreeze()
            gc.collect()
            self._collected_size = sys.getallocatedblocks()
            self.full_collections += 1
        gc.freeze()
