"""Decoded images kept per loader process, least recently used first out.

A training image holds about three people (the synthetic set, 3DPW) and the teacher's overlap edge file is one per
image: without this each person's sample decoded both again. Decoding was ~40% of a teacher sample's loader time on
2 cores (docs/findings.md). Arrays come back read-only, cached or not, so no caller can change
what the next one gets.
"""
from collections import OrderedDict


class DecodedImages:
    def __init__(self, max_mb):
        self.max_bytes = int(max_mb * 2 ** 20)
        self.items = OrderedDict()
        self.bytes = 0

    def get(self, key, load):
        """load() -> array, once per key while it stays among the most recently used max_mb."""
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
            return value
        value = load()
        value.flags.writeable = False
        if value.nbytes <= self.max_bytes:
            self.items[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes:
                self.bytes -= self.items.popitem(last=False)[1].nbytes
        return value
