"""Golden outputs: a policy's loss and prediction on fixed seeds and data must not drift.

A failure means a change altered a policy's numbers (initialisation, architecture, noise
schedule, normalisation, defaults). If that was intended, regenerate the files with
`.venv/bin/python tests/policies/make_golden.py` and commit them with the change.
"""

from __future__ import annotations

import pytest
import torch
from make_golden import CASES, GOLDEN_DIR, golden_case
from safetensors.torch import load_file

REGENERATE = "if the change is intended, run `.venv/bin/python tests/policies/make_golden.py {name}` and commit the file"


@pytest.mark.parametrize("name", CASES)
def test_policy_matches_its_golden_output(name: str) -> None:
    path = GOLDEN_DIR / f"{name}.safetensors"
    assert path.is_file(), f"missing {path}; " + REGENERATE.format(name=name)
    expected, got = load_file(str(path)), golden_case(name)
    for key, value in expected.items():
        assert got[key].shape == value.shape, f"{name}: '{key}' has shape {tuple(got[key].shape)}, " \
            f"golden {tuple(value.shape)}; " + REGENERATE.format(name=name)
        diff = (got[key] - value).abs().max().item()
        assert torch.allclose(got[key], value, rtol=1e-4, atol=1e-5), \
            f"{name}: '{key}' differs from {path.name} by up to {diff:.3g}; " + REGENERATE.format(name=name)
