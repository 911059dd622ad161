"""Quote-aware record boundaries for splitting large CSV objects between work items.

RFC 4180 CSV quotes fields with ``"`` and escapes a quote inside a field as ``""``, so quotes
are balanced outside fields: a newline ends a record exactly when an even number of quotes
precedes it. One sequential pass counting quotes (``bytes.count`` speed) finds, for each target
offset the plan chose, the first record boundary at or after it. The pass is paid once per large
object when the plan is made; the plan stores the cut offsets, so readers need no alignment.
"""

from __future__ import annotations

from kbt.storage import Store

SCAN_CHUNK = 8 * 1024 * 1024
QUOTE = ord('"')


def csv_split_points(store: Store, key: str, size: int, targets: list[int]) -> list[int]:
    """Offsets (record starts, ascending, distinct, inside (0, size)) at or after each of the
    ascending ``targets``."""
    cuts: list[int] = []
    if not targets:
        return cuts
    quotes_before = 0  # quotes in [0, chunk start)
    position = 0
    pending = 0  # index into targets
    with store.open(key) as reader:
        while pending < len(targets) and (chunk := reader.read(SCAN_CHUNK)):
            pending = _cuts_in_chunk(
                chunk, position, quotes_before, targets=targets, pending=pending, cuts=cuts
            )
            quotes_before += chunk.count(b'"')
            position += len(chunk)
    return [cut for cut in cuts if 0 < cut < size]


def _cuts_in_chunk(
    chunk: bytes, position: int, quotes_before: int, *, targets: list[int], pending: int, cuts: list[int]
) -> int:
    """Record the cut of every target whose boundary lies in ``chunk``; return targets left."""
    end = position + len(chunk)
    cursor = 0
    parity = quotes_before
    while pending < len(targets) and targets[pending] - 1 < end:
        if cuts and targets[pending] <= cuts[-1]:
            pending += 1  # one long record swallowed this target too
            continue
        search_from = max(cursor, targets[pending] - 1 - position)
        parity += chunk.count(b'"', cursor, search_from)
        newline = chunk.find(b"\n", search_from)
        while newline != -1:
            parity += chunk.count(b'"', search_from, newline)
            if parity % 2 == 0:
                break
            search_from = newline + 1
            newline = chunk.find(b"\n", search_from)
        if newline == -1:
            return pending  # the boundary lies in a later chunk
        cuts.append(position + newline + 1)
        cursor = search_from = newline + 1
        pending += 1
    return pending
