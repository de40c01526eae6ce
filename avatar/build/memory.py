"""Memory a rendering process frees is kept for its next use instead of handed back to the system.

    keep_freed_memory()     # the command line and each scene worker, before they render

glibc's malloc returns large blocks to the system as soon as they are freed: it maps each
block above its threshold (128 KiB, rising to the size of the blocks freed) with mmap and
unmaps it on free, and it trims the top of its heap once 2 x that threshold is free there.
Every 1080p picture, every x264 encoder's frame buffers and every voice graph then land on
pages the kernel must zero again (and, for x264's and numpy's buffers, which ask for
transparent huge pages, compact memory for first); on a virtual machine a new page can mean a
fault in the host too. With the thresholds below, freed blocks of up to MMAP_THRESHOLD stay in
the heap for the next picture and the next scene's encoder.

bench/bench_fresh_memory.py measures it: four 1080p segments written one after another in one
process. Turning transparent huge pages off as well (prctl PR_SET_THP_DISABLE) took a little less
system time there, but whole renders then took 43.7-44.9 s of CPU against 39.6-41.2 s without
either change (bench/bench_speed.py, alternated 3 times; the TLB misses of 4 KiB pages): huge
pages stay. Only for processes that render: a library call (avatar.render from someone's
program) leaves its allocator alone. Nothing is changed where the C library is not glibc (no
mallopt).
"""
from __future__ import annotations

M_TRIM_THRESHOLD = -1          # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2 ** 20  # blocks up to this size come from the heap (glibc's maximum on 64-bit)
TRIM_THRESHOLD = 512 * 2 ** 20  # free memory at the heap's top that stays there


def keep_freed_memory() -> bool:
    """Set this process's malloc thresholds (above); True where the C library took them."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):   # not glibc (macOS, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting either fixes both, and the trim threshold alone would
    # leave the mmap threshold at its 128 KiB start, mapping every picture anew
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


__all__ = ["keep_freed_memory"]
