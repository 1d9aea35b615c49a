"""Long-lived state out of full garbage collections, with the memory it may cost bounded."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator

import pytest

from mcp_guard.long_lived import LongLivedHeap


class Node:
    def __init__(self) -> None:
        self.itself = self  # a reference cycle: only the cycle collector frees it


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_reference_cycle_kept_by_a_settle_is_freed_once_the_heap_has_grown_past_its_limit() -> None:
    heap = LongLivedHeap(max_growth=1.2)
    node = Node()
    alive = weakref.ref(node)
    heap.settle()
    del node
    gc.collect()
    assert alive() is not None  # kept out of collections: the price of a settle
    heap.settle()
    assert alive() is not None and heap.full_collections == 0  # the heap has not grown
    grown = [str(i) for i in range(sys.getallocatedblocks() // 2)]  # a string is a block or two
    heap.settle()
    assert alive() is None and heap.full_collections == 1
    assert grown


def test_a_heap_may_not_be_allowed_to_grow_by_nothing() -> None:
    with pytest.raises(ValueError, match="max_growth must be more than 1, not 1"):
        LongLivedHeap(max_growth=1)
