"""How CPU tensors get their memory: large buffers on huge pages, freed ones kept for reuse.

A training step of the default model holds gigabytes of activations. In a fresh process
every page of that is first touched inside the first steps, and the kernel's 4 KiB page
faults cost a large share of those steps while the heap grows. Two process-wide settings cut
that; neither changes any number computed.

- `request_huge_pages`: torch's CPU allocator aligns allocations of 2 MiB and more to 2 MiB
  and asks for transparent huge pages (`madvise`) when `THP_MEM_ALLOC_ENABLE` is set, one
  fault per 2 MiB instead of per 4 KiB. torch reads the variable once, at its first
  allocation (during `import torch`), so `apa_console.engine`'s `__init__` calls this
  before any engine module imports torch; where torch came first it is a harmless no-op. Set
  `THP_MEM_ALLOC_ENABLE=0` to opt out. Kernels without transparent huge pages are left
  alone (torch would warn that its `madvise` failed).
- `keep_freed_memory_for_reuse`: glibc would otherwise return freed activation buffers to
  the kernel and fault them in again on the next forward pass.
"""

from __future__ import annotations

import os
from pathlib import Path

HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"  # read by torch's CPU allocator (c10)

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_allocator_tuned = False


_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def request_huge_pages() -> None:
    """Ask torch's CPU allocator for transparent huge pages, unless the user said otherwise
    or the kernel has none to give."""
    try:
        setting = _THP_SETTING.read_text()
    except OSError:  # not Linux, or a kernel built without them
        return
    if "[never]" not in setting:
        os.environ.setdefault(HUGE_PAGES_ENV, "1")


def keep_freed_memory_for_reuse() -> None:
    """Let glibc reuse freed activation buffers instead of returning them to the kernel.

    By default every buffer over a few MiB is mmap-ed and unmapped when freed, so each
    forward pass page-faults its activations in again, and the kernel spends a visible
    share of CPU scoring time zeroing pages. Raising the mmap and trim thresholds keeps
    those pages in the heap (the process holds on to its peak working set instead).
    Linux/glibc only; harmless no-op elsewhere.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        for threshold in (256 << 20, 32 << 20):  # glibc may cap the mmap threshold at 32 MiB
            if libc.mallopt(_M_MMAP_THRESHOLD, threshold) == 1:
                break
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass
