"""JSON that cannot break the receiver: bounded at ingest, tolerant when read back.

Python's ``json`` recurses once per nesting level, so a value nested ~1,000
levels deep raises ``RecursionError`` when it is encoded or decoded, and a
stored NaN makes a strict encoder raise ``ValueError``. At ingest such values
are refused (:func:`depth_of`); rows stored before that check, or written to
the database by other means, are still read: :func:`loads_stored` falls back
instead of raising, :func:`dumps_safe` cuts what cannot be encoded.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
CUT = "[... nested deeper than {depth} levels: cut by pytest-rt]"
UNREADABLE = "[... stored value could not be read back: {why}; hidden by pytest-rt]"


def depth_of(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``{}`` is 1), counting only up to ``limit + 1``.

    Iterative, so no depth can exhaust the stack; it stops as soon as the limit is passed.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def prune(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` that any JSON encoder takes: containers deeper than ``max_depth``
    become a visible marker, non-finite floats become null. Iterative, like :func:`depth_of`."""
    marker = CUT.format(depth=max_depth)

    def leaf(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, (str, int, float, bool)) or item is None:
            return item
        return str(item)

    def shell(item: Any, depth: int) -> Any:
        if not isinstance(item, (dict, list)):
            return leaf(item)
        if depth >= max_depth:
            return marker
        copy: Any = {} if isinstance(item, dict) else []
        pending.append((item, copy, depth + 1))
        return copy

    pending: list[tuple[Any, Any, int]] = []
    root = shell(value, 0)
    while pending:
        source, target, depth = pending.pop()
        if isinstance(source, dict):
            for key, child in source.items():
                target[str(key)] = shell(child, depth)
        else:
            target.extend(shell(child, depth) for child in source)
    return root


def dumps_safe(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; whatever the encoder refuses is pruned first."""
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
    except (RecursionError, ValueError, TypeError):
        pass
    return json.dumps(
        prune(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8", "replace")


def loads_stored(text: str | None, fallback: Any) -> Any:
    """A stored JSON column read back; ``fallback(why)`` when it cannot be, never an exception.

    ``fallback`` is a function of the reason so a dict column can answer a dict
    and a list column a list, each saying what happened.
    """
    if not text:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        return fallback("nested too deep")
    except ValueError:
        return fallback("not JSON")


def unreadable_object(why: str) -> dict[str, str]:
    return {"pytest-rt": UNREADABLE.format(why=why)}


def unreadable_list(why: str) -> list[str]:
    return [UNREADABLE.format(why=why)]


def unreadable_errors(why: str) -> list[dict[str, str]]:
    return [{"nodeid": "", "msg": UNREADABLE.format(why=why)}]
