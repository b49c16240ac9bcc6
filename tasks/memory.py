"""The process's freed memory handed back to the system."""

from __future__ import annotations

import ctypes
import sys


def return_freed_memory() -> None:
    """Hand the memory a stage freed back to the system: glibc keeps the freed blocks of every
    thread's arena for reuse, and the search's threads leave about 75 MB of them at 100,000
    rows that the rest of the run never reuses; pyarrow's pool (mimalloc) keeps what reading
    and validating the table freed (45 MB of a 100,000-row Parquet file's read). Elsewhere
    than glibc, glibc's part does nothing."""
    if "pyarrow" in sys.modules:  # only a run that read its table with it has a pool to trim
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return
