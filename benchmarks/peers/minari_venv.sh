#!/usr/bin/env bash
# Make the venv that runs Minari 0.5.4's own code (with jax, which its DataCollector needs), for
# the Minari format tests (tests/data/test_formats_minari.py; pillow for their fixtures). Usage:
# bash benchmarks/peers/minari_venv.sh [VENV] (default ~/.cache/imitari-peers/minari, where the
# tests look). Pins are those of the venv the tests were run with; imitari itself is not needed.
set -euo pipefail
venv=${1:-$HOME/.cache/imitari-peers/minari}
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q minari==0.5.4 h5py==3.16.0 gymnasium==1.4.0 numpy==2.4.6 jax==0.10.2 jaxlib==0.10.2 pillow==13.0.0
"$venv/bin/python" -c "import minari, jax; print('minari', minari.__version__, 'ready in $venv')"
