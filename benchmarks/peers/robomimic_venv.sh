#!/usr/bin/env bash
# Make the venv that runs robomimic 0.3.0's own code beside torch 2.13.0 (CPU), for
# benchmarks/peers/robomimic_bc.py. Usage: bash benchmarks/peers/robomimic_venv.sh [VENV]
# (default ~/.cache/imitari-peers/robomimic). imitari is installed into it too, only to read
# imitari datasets and to step the same envs on the same seeds (shared/SIMULATORS.md).
set -euo pipefail
venv=${1:-$HOME/.cache/imitari-peers/robomimic}
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -c <(echo torch==2.13.0) robomimic==0.3.0 six "mujoco==3.3.0" "gymnasium[mujoco]" metaworld
"$venv/bin/pip" install -q -c <(echo torch==2.13.0) -e "$repo[metaworld]"
bash "$repo/benchmarks/peers/torchvision_patch.sh" "$venv"
"$venv/bin/python" -c "import robomimic, torchvision, imitari; print('robomimic', robomimic.__version__, 'ready in $venv')"
