#!/usr/bin/env bash
# Make the venv that runs LeRobot's own code beside torch 2.13.0 (CPU), for the LeRobot format
# tests (tests/data/test_formats_lerobot.py) and benchmarks/peers/lerobot_video_loader.py.
# Usage: bash benchmarks/peers/lerobot_venv.sh [VENV] (default ~/.cache/imitari-peers/lerobot,
# where the tests look). Pins are those of the venv the tests were run with (lerobot 0.4.4; its
# datasets decode mp4 video with PyAV). imitari is installed too, to read imitari datasets.
set -euo pipefail
venv=${1:-$HOME/.cache/imitari-peers/lerobot}
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
printf '%s\n' torch==2.13.0 torchvision==0.28.0 av==18.1.0 datasets==5.2.0 numpy==2.4.6 > "$pins"
"$venv/bin/pip" install -q torch==2.13.0 torchvision==0.28.0
"$venv/bin/pip" install -q -c "$pins" lerobot==0.4.4 av==18.1.0
"$venv/bin/pip" install -q -c "$pins" -e "$repo[metaworld]"
bash "$repo/benchmarks/peers/torchvision_patch.sh" "$venv"
"$venv/bin/python" -c "import lerobot, imitari; from lerobot.datasets.lerobot_dataset import LeRobotDataset; print('lerobot', lerobot.__version__, 'ready in $venv')"
