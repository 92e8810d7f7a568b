"""Durable, atomic file writes for the episode store: temp file, fsync, `os.replace`.

Every file of a dataset (chunks included) goes through `write_bytes_atomic`, so a writer
killed at any moment leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

PARTIAL_SUFFIX = ".partial"


def write_bytes_atomic(path: Path, data: Any, *, exclusive: bool = False) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then move it into place.

    `exclusive` keeps zarr's `set_if_not_exists` semantics: an existing `path` is left alone
    (no race to guard against: a dataset has a single writer).
    """
    if exclusive and path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> bytes:
    """The commit primitive: atomic, durable replacement of a JSON file (strict JSON, no NaN);
    returns the bytes written."""
    data = (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode()
    write_bytes_atomic(path, data)
    fd = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return data


class DurableLocalStore(LocalStore):
    """zarr's LocalStore whose writes are fsynced before the atomic rename.

    LocalStore already writes through a temp file + rename, which survives a killed process;
    the fsync makes chunk contents durable before `meta.json` (fsynced too) can commit them.
    """

    async def _set(self, key: str, value: Buffer, exclusive: bool = False) -> None:
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(write_bytes_atomic, self.root / key, value.as_buffer_like(), exclusive=exclusive)

    def set_sync(self, key: str, value: Buffer) -> None:
        self._ensure_open_sync()
        self._check_writable()
        write_bytes_atomic(self.root / key, value.as_buffer_like())
