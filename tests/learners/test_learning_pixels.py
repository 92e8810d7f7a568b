"""Learning from pixels only: `bc` and `diffusion` see nothing but 32x32 camera frames of
`builtin/reach:pixels` (no state), train with the default small CNN, and must succeed >= 90%
on 50 held-out seeds (100000+; the demonstrations are seeds 0-99)."""

from __future__ import annotations

from pathlib import Path

import pytest
from learning_check import train_and_evaluate

CASES = {
    "bc": ({"name": "bc", "obs_horizon": 1, "action_horizon": 4, "exec_horizon": 2}, 300, 64),
    # sizes chosen on the validation seeds 2000-2049 (docs/images.md): flow matching 92% at 400
    # updates (88% at 300), the DDPM objective 68% at 400
    "diffusion": ({"name": "diffusion", "obs_horizon": 1, "denoiser": "mlp", "objective": "flow", "action_horizon": 4,
                   "exec_horizon": 2, "ema": False}, 400, 64),
}


@pytest.fixture(scope="module")
def pixel_demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imitari.envs.collect import collect

    path = tmp_path_factory.mktemp("pixels") / "reach"
    collect("builtin/reach:pixels", path, episodes=100, workers=1, progress=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_learns_builtin_reach_from_pixels(name: str, pixel_demos: Path, tmp_path: Path) -> None:
    policy_cfg, steps, batch = CASES[name]
    success = train_and_evaluate(pixel_demos, tmp_path / name, policy_cfg, steps=steps, batch_size=batch,
                                 task="builtin/reach:pixels")
    assert success >= 0.9, f"{name} from pixels: success {success:.0%} on 50 held-out seeds"
