"""The one failure policy of every stage: the whole batch first, then item by item.

Engines are fastest on batches, but one bad item must not cost the others their results. So a batch
that raises (or returns the wrong number of results) is run again one item at a time; each item then
ends as its result or as an `ItemError` carrying what went wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ItemError:
    """Why one item of a batch failed: `ExceptionType: message`."""

    detail: str

    @classmethod
    def of(cls, error: BaseException) -> "ItemError":
        return cls(f"{type(error).__name__}: {error}")


def batch_then_items(run: Callable[[list[T]], Sequence[R]], items: Sequence[T]) -> list[R | ItemError]:
    """`run(items)`, or when that fails, `run([item])` for each item; one result or `ItemError` per item, in order."""
    items = list(items)
    if not items:
        return []
    try:
        results = list(run(items))
        if len(results) == len(items):
            return results
        failure: ItemError = ItemError(f"RuntimeError: the batch returned {len(results)} results for {len(items)} items")
    except Exception as error:  # noqa: BLE001 - retried item by item below to find the failing ones
        failure = ItemError.of(error)
    if len(items) == 1:
        return [failure]
    outcomes: list[R | ItemError] = []
    for item in items:
        try:
            result = list(run([item]))
            outcomes.append(result[0] if len(result) == 1 else
                            ItemError(f"RuntimeError: the engine returned {len(result)} results for one item"))
        except Exception as error:  # noqa: BLE001 - recorded per item
            outcomes.append(ItemError.of(error))
    return outcomes
