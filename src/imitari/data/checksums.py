"""Per-chunk CRC-32 checksums of a feature's committed rows, and files' CRC-32.

A checksum covers the decoded rows of one zarr chunk that are committed (little-endian bytes,
row-major), not the chunk file's bytes. Appending rows to a partly filled chunk extends its
CRC from the stored value (CRC-32 streams), so nothing already written is read back; and a
writer killed after rewriting that chunk but before its commit leaves the committed rows and
their checksum as they were. Stored in meta.json as `{"rows": R, "crc32": [...]}` per feature.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np


def _bytes(rows: np.ndarray) -> memoryview:
    data = np.ascontiguousarray(rows)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("<"))
    return memoryview(data).cast("B")


def extend(crcs: list[int], rows_per_chunk: int, committed: int, new: np.ndarray) -> list[int]:
    """The checksums of `committed` rows (`crcs`) after appending `new` rows at row `committed`."""
    out = list(crcs)
    pos, i = committed, 0
    while i < len(new):
        offset = pos % rows_per_chunk
        take = min(rows_per_chunk - offset, len(new) - i)
        crc = zlib.crc32(_bytes(new[i : i + take]), out[pos // rows_per_chunk] if offset else 0)
        if offset:
            out[pos // rows_per_chunk] = crc
        else:
            out.append(crc)
        pos, i = pos + take, i + take
    return out


def compute(data: np.ndarray, rows_per_chunk: int) -> list[int]:
    """The checksums of all rows of `data`, one per chunk of `rows_per_chunk` rows."""
    return extend([], rows_per_chunk, 0, data)


def bad_chunks(data: np.ndarray, rows_per_chunk: int, crcs: list[int], first_chunk: int = 0) -> list[int]:
    """Indices of the chunks whose rows in `data` (starting at chunk `first_chunk`) do not match."""
    return [
        first_chunk + k
        for k, crc in enumerate(compute(data, rows_per_chunk))
        if crc != crcs[first_chunk + k]
    ]


def file_crc32(path: Path) -> int:
    """CRC-32 of a file's bytes, read in 1 MiB blocks."""
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc
