#!/usr/bin/env bash
# torchvision 0.28 (a dependency of robomimic and LeRobot) registers fake kernels for ops the CPU
# torch does not have; guard those two decorators so `import torchvision` works in venv $1
# (shared/SIMULATORS.md). Usage: bash benchmarks/peers/torchvision_patch.sh VENV
set -euo pipefail
meta=$("$1/bin/python" -c "import importlib.util as u; print(u.find_spec('torchvision').submodule_search_locations[0])")/_meta_registrations.py
sed -i 's/^@torch.library.register_fake("torchvision::\(q\?nms\)")$/@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))/' "$meta"
