"""Fixtures of the policy tests (data helpers live in policy_testdata.py)."""

from __future__ import annotations

import pytest
from policy_testdata import reference_stats


@pytest.fixture(scope="session")
def stats() -> dict[str, dict[str, list[float]]]:
    return reference_stats()
