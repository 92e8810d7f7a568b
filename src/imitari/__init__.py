"""imitari: learn behaviour from demonstrations (collect -> train -> evaluate -> report)."""

import os

# OpenMP threads that spin while they wait stall torch on a machine whose cores are busy (a
# training beside other jobs fell to a few updates/s); passive waiting avoids it, at some speed
# on an idle machine (benchmarks/threads_under_load.py; README). Set before torch is first
# imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
