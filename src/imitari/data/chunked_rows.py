"""Random access to a feature's rows on disk, one verified chunk at a time.

`ChunkedRows` indexes like the numpy array `Dataset.arrays()` would hold (`rows[t]` for an
integer array `t` of any shape), so the window sampler gathers from it unchanged, but only the
chunks the batch touches are read, decoded and checked against their committed CRC-32; the
most recently used ones stay decoded up to a byte budget. This is how a dataset of camera
frames larger than memory trains.

Chunks written with the store's image codec (blosc) are decoded straight from their files with
numcodecs, the library zarr itself decodes them with: zarr's own per-chunk read costs several
times the decode for chunks of a few frames (docs/images.md). Any other codec goes through zarr.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import zarr

from imitari.data import checksums
from imitari.data.meta import DatasetError

CACHE_BYTES = 1 << 28
"""Decoded chunks kept per feature (256 MiB)."""


class ChunkedRows:
    """The committed rows of one feature, read from disk chunk by chunk (read-only)."""

    def __init__(self, array: zarr.Array, *, folder: Path, n_rows: int, crcs: list[int] | None,
                 name: str, cache_bytes: int = CACHE_BYTES) -> None:
        self._array, self._folder, self._crcs, self.name = array, folder, crcs, name
        self.shape = (n_rows, *array.shape[1:])
        self.dtype = array.dtype
        self.chunk_rows = int(array.chunks[0])
        self._chunk_bytes = self.chunk_rows * int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_chunks = max(1, cache_bytes // max(1, self._chunk_bytes))
        codecs = [type(c).__name__ for c in array.metadata.codecs]
        self._blosc = codecs == ["BytesCodec", "BloscCodec"]

    def __len__(self) -> int:
        return self.shape[0]

    def _decode(self, i: int) -> np.ndarray:
        lo, hi = i * self.chunk_rows, min(self.shape[0], (i + 1) * self.chunk_rows)
        try:
            if self._blosc:
                import numcodecs

                key = self._array.metadata.encode_chunk_key((i,) + (0,) * (len(self.shape) - 1))
                raw = numcodecs.Blosc().decode((self._folder / key).read_bytes())
                data = np.frombuffer(raw, dtype=self.dtype).reshape(self.chunk_rows, *self.shape[1:])[: hi - lo]
            else:
                data = np.ascontiguousarray(self._array[lo:hi])
        except Exception as e:  # a missing or damaged chunk: the errors vary by codec
            raise DatasetError(f"cannot read chunk {i} of feature {self.name!r} "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
        if self._crcs is not None and checksums.bad_chunks(data, self.chunk_rows, self._crcs, i):
            raise DatasetError(f"damaged: chunk {i} of feature {self.name!r} (rows {lo}..{hi - 1}) "
                               "does not match its checksum")
        return data

    def _chunk(self, i: int) -> np.ndarray:
        data = self._cache.get(i)
        if data is None:
            data = self._cache[i] = self._decode(i)
            if len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(i)
        return data

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """The rows at the integer indices `rows` (any shape): `(*rows.shape, *feature shape)`."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"rows {rows.min()}..{rows.max()} outside 0..{self.shape[0] - 1}")
        flat = rows.reshape(-1)
        out = np.empty((len(flat), *self.shape[1:]), dtype=self.dtype)
        chunk_of = flat // self.chunk_rows
        for i in np.unique(chunk_of):
            hit = chunk_of == i
            out[hit] = self._chunk(int(i))[flat[hit] - i * self.chunk_rows]
        return out.reshape(*rows.shape, *self.shape[1:])
