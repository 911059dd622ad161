"""glibc malloc settings for a shard: keep freed memory for the next model call.

Each call of a tabular model allocates and frees tens of MiB (the CSV text, arrow buffers,
frames, numpy arrays). With glibc's defaults a block that large is mapped and unmapped, and freed
memory at the top of the heap is handed back to the kernel, so every call faults its pages in
again: on 1.25M heart rows (one shard) 92k page faults and ~0.7 s of system time of 6.4 s of
CPU. Keeping 64 MiB at the heap top and serving blocks of up to 32 MiB from the heap halves the
system time (measured: see docs/operations.md). Nothing changes where the user set any
``MALLOC_*`` variable (glibc's own tunables win) or the C library has no ``mallopt`` (musl).
"""

from __future__ import annotations

import ctypes
import os

M_TOP_PAD = -2  # glibc malloc.h: free memory kept at the heap top when trimming
M_MMAP_THRESHOLD = -3  # glibc malloc.h: blocks at least this big are mapped on their own
TOP_PAD_BYTES = 64 * 1024 * 1024
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own ceiling for its moving threshold


def keep_freed_memory() -> bool:
    """Apply the settings to this process (and what it forks); whether they were applied."""
    if any(name.startswith(("MALLOC_", "GLIBC_TUNABLES")) for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TOP_PAD, TOP_PAD_BYTES)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
