#!/usr/bin/env bash
# Make the venv that runs LeRobot's own code beside torch 2.13.0 (CPU), for the LeRobot format
# tests (tests/data/test_formats_lerobot.py) and benchmarks/peers/lerobot_video_loader.py.
# Usage: bash benchmarks/peers/lerobot_venv.sh [VENV] (default ~/.cache/imitari-peers/lerobot,
# where the tests look). The packages are those of the venv the tests were run with
# (lerobot_requirements.txt: lerobot 0.4.4, torchvision 0.28, av 18, torchcodec 0.13 for its video
# decoding, which needs FFmpeg's libraries: `apt-get install ffmpeg` on Debian). imitari is installed
# too, to read imitari datasets.
set -euo pipefail
venv=${1:-$HOME/.cache/imitari-peers/lerobot}
repo=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0
# lerobot's declared pins exclude this torch: install the recorded working set without resolving
"$venv/bin/pip" install -q --no-deps -r "$repo/benchmarks/peers/lerobot_requirements.txt"
"$venv/bin/pip" install -q --no-deps -e "$repo"
bash "$repo/benchmarks/peers/torchvision_patch.sh" "$venv"
"$venv/bin/python" -c "import lerobot, imitari; from lerobot.datasets.lerobot_dataset import LeRobotDataset; print('lerobot', lerobot.__version__, 'ready in $venv')"
