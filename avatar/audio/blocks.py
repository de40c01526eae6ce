"""Audio as a stream of (channels, n) float32 blocks, the way the final mix passes it along.

    for b in blocks_of(parts, 48000): ...        # the same samples, exactly 1 s per block
    reader = Reader(blocks); reader.channels; reader.take(n)   # n samples at a time
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


def blocks_of(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The same samples in blocks of exactly `size` (the last one shorter), whatever blocks come in."""
    pending: list[np.ndarray] = []
    have = 0
    for b in blocks:
        while b.shape[1]:
            take = min(size - have, b.shape[1])
            pending.append(b[:, :take])
            have, b = have + take, b[:, take:]
            if have == size:
                yield pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
                pending, have = [], 0
    if have:
        yield np.concatenate(pending, axis=1)


class Reader:
    """Take exactly n samples at a time from a stream of blocks (silence past its end).
    channels: the first block's channel count (the stream is started to know it)."""

    def __init__(self, blocks: Iterable[np.ndarray], channels: int = 1):
        self._it = iter(blocks)
        self._head = next(self._it, None)
        self.channels = self._head.shape[0] if self._head is not None else channels

    def take(self, n: int) -> np.ndarray:
        parts, have = [], 0
        while have < n:
            if self._head is None or not self._head.shape[1]:
                self._head = next(self._it, None)
                if self._head is None:
                    parts.append(np.zeros((self.channels, n - have), np.float32))
                    break
                continue
            k = min(n - have, self._head.shape[1])
            parts.append(self._head[:, :k])
            self._head, have = self._head[:, k:], have + k
        if not parts:
            return np.zeros((self.channels, 0), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
