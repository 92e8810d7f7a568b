"""Fuzz: a damaged meta.json, chunk or checkpoint file either reads back exactly as written or
raises the project's own error with a one-line message, never anything else.

10,000 generated inputs in all (7,000 meta.json, 1,500 chunk, 1,500 checkpoint), derandomised
so CI sees the same ones every run. Each mutates bytes of a tiny dataset or checkpoint in
memory (a flip, a truncation, an inserted, deleted or overwritten byte) and reopens it through
the same code `Dataset.open`, `Dataset.episode`, `load_policy` and `load_train_state` use.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imitari.data.meta import read as read_meta
from imitari.data.store import Dataset, DatasetError
from imitari.learners.checkpoint import load_train_state
from imitari.policies.loading import CheckpointError, find_checkpoint, load_policy

pytestmark = pytest.mark.filterwarnings("ignore")


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@st.composite
def mutations(draw: st.DrawFn, size: int) -> Callable[[bytes], bytes]:
    """One damage to a file of `size` bytes."""
    code = draw(st.integers(0, 5 * size * 255 * 16 - 1))  # one draw: hypothesis' cost is per draw
    code, kind = divmod(code, 5)
    code, at = divmod(code, size)
    run, value = divmod(code, 255)
    kind, value, run = ["flip", "truncate", "insert", "delete", "overwrite"][kind], value + 1, run + 1

    def mutate(data: bytes) -> bytes:
        if kind == "flip":
            return data[:at] + bytes([data[at] ^ value]) + data[at + 1 :]
        if kind == "truncate":
            return data[:at]
        if kind == "insert":
            return data[:at] + bytes([value]) + data[at:]
        if kind == "delete":
            return data[:at] + data[at + run :]
        return data[:at] + bytes([value]) * run + data[at + run :]

    return mutate


def _one_line(exc: BaseException) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "d"
    ds = Dataset.create(path, features={"action": ((2,), "float32")}, env="builtin/reach", fps=10.0)
    rng = np.random.default_rng(0)
    for i in range(3):
        ds.append_episode({"action": rng.standard_normal((8 + i, 2), dtype=np.float32)},
                          info={"seed": i, "success": i != 1, "source": "expert", "return": 1.5 * i})
    ds.set_filter_keys({"train": [0, 2], "valid": [1]})
    return path


def test_fuzz_meta_json(tiny: Path) -> None:
    original = (tiny / "meta.json").read_bytes()
    expected, features = read_meta(original, tiny)

    @_settings(7000)
    @given(mutations(len(original)))
    def check(mutate: Callable[[bytes], bytes]) -> None:
        try:
            raw, parsed = read_meta(mutate(original), tiny)
        except DatasetError as exc:
            _one_line(exc)
            return
        assert raw == expected and parsed == features

    check()


def test_fuzz_chunk_bytes(tiny: Path, tmp_path: Path) -> None:
    path = tmp_path / "d"
    shutil.copytree(tiny, path)
    chunk = path / "data.zarr" / "action" / "c" / "0" / "0"
    original = chunk.read_bytes()
    ds = Dataset.open(path)
    expected = [ds.episode(i)["action"].copy() for i in range(ds.n_episodes)]

    @_settings(1500)
    @given(mutations(len(original)), st.integers(0, 2))
    def check(mutate: Callable[[bytes], bytes], episode: int) -> None:
        chunk.write_bytes(mutate(original))
        try:
            got = ds.episode(episode)["action"]
        except DatasetError as exc:
            _one_line(exc)
            return
        np.testing.assert_array_equal(got, expected[episode])

    check()


@pytest.fixture(scope="module")
def checkpoint(reach_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imitari.learners.loop import train

    run = tmp_path_factory.mktemp("fuzz") / "run"
    train({"data": str(reach_dataset), "out": str(run), "steps": 2, "batch_size": 4, "progress": False,
           "threads": 1, "policy": {"name": "bc", "hidden": [4], "action_horizon": 2, "exec_horizon": 1}})
    return find_checkpoint(run)


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_fuzz_checkpoint_files(checkpoint: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "step"
    shutil.copytree(checkpoint, ckpt)
    names = ["config.json", "normalizer.json", "model.safetensors", "train_state.pt", "manifest.json"]
    originals = {name: (ckpt / name).read_bytes() for name in names}
    weights = load_policy(ckpt).state_dict()
    state = load_train_state(ckpt)

    @_settings(1500)
    @given(st.sampled_from(names), st.data())
    def check(name: str, data: st.DataObject) -> None:
        mutate = data.draw(mutations(len(originals[name])))
        (ckpt / name).write_bytes(mutate(originals[name]))
        try:
            if name == "train_state.pt" or (name == "manifest.json" and data.draw(st.booleans())):
                assert _same(load_train_state(ckpt), state)
            else:
                assert _same(load_policy(ckpt).state_dict(), weights)
        except CheckpointError as exc:
            _one_line(exc)
        finally:
            (ckpt / name).write_bytes(originals[name])

    check()
