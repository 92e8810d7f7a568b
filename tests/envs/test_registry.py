"""The task registry: names, suggestions, errors, and the env contract every task follows."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from imitari.envs.registry import MissingExtraError, TaskError, TaskSpec, get_task, list_tasks, register

METAWORLD10 = ["reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown",
               "window-open", "peg-insert-side", "assembly", "basketball"]


def test_all_tasks_are_registered() -> None:
    expected = {"builtin/reach", "builtin/two_routes", "pusht", *(f"metaworld/{n}" for n in METAWORLD10)}
    assert expected <= set(list_tasks())
    assert list_tasks() == sorted(list_tasks())
    spec = get_task("metaworld/push")
    assert (spec.max_steps, spec.obs_keys, spec.fps, spec.extra) == (500, ("state",), 80.0, "metaworld")


@pytest.mark.parametrize(("typo", "closest"), [
    ("builtin/rech", "builtin/reach"), ("metaworld/pick_place", "metaworld/pick-place"),
    ("two_routes", "builtin/two_routes"), ("PushT-v0", "pusht"),
])
def test_unknown_task_names_the_closest(typo: str, closest: str) -> None:
    with pytest.raises(ValueError, match=f"unknown task '{typo}': did you mean {closest}"):
        get_task(typo)


def test_duplicate_registration_is_refused() -> None:
    spec = get_task("builtin/reach")
    with pytest.raises(TaskError, match="already registered"):
        register(TaskSpec(name=spec.name, make=spec.make, max_steps=1, obs_keys=("state",), fps=1.0, description=""))


def test_task_without_expert_says_so() -> None:
    spec = dataclasses.replace(get_task("pusht"), name="pusht-unplanned", make_expert=None)
    with pytest.raises(TaskError, match="task pusht-unplanned has no expert yet"):
        spec.expert(None)  # type: ignore[arg-type]


def test_registry_imports_without_the_simulators() -> None:
    """Simulators are imported lazily; a missing extra is named with its pip install line."""
    code = (
        "import sys\n"
        "for m in ('metaworld', 'mujoco', 'gym_pusht', 'gymnasium_robotics'): sys.modules[m] = None\n"
        "from imitari.envs.registry import get_task, list_tasks, MissingExtraError\n"
        "assert 'metaworld/push' in list_tasks() and 'pusht' in list_tasks()\n"
        "for name in ('metaworld/push', 'pusht', 'pointmaze/medium'):\n"
        "    try:\n"
        "        get_task(name).make()\n"
        "    except MissingExtraError as e:\n"
        "        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "metaworld/push needs the metaworld extra: pip install 'imitari[metaworld]'" in out
    assert "pusht needs the pusht extra: pip install 'imitari[pusht]'" in out
    assert "pointmaze/medium needs the maze extra: pip install 'imitari[maze]'" in out
    assert issubclass(MissingExtraError, ImportError)


@pytest.mark.parametrize("name", ["builtin/reach", "builtin/two_routes", "pusht", "pusht/keypoints"])
def test_env_contract(name: str) -> None:
    """Dict float32 observations, bool success at every step, truncation at max_steps, frames,
    and the seed's layout again after an episode."""
    if name.startswith("pusht"):
        pytest.importorskip("gym_pusht")
    spec = get_task(name)
    env = spec.make(render=True)
    obs, info = env.reset(seed=1)
    first = obs["state"]
    assert set(obs) == set(spec.obs_keys) and info["success"] is False
    for key in spec.obs_keys:
        assert obs[key].dtype == np.float32 and obs[key].shape == env.observation_space[key].shape
    corner = env.action_space.low  # drives into a corner: never succeeds
    for t in range(1, spec.max_steps + 1):
        obs, reward, terminated, truncated, info = env.step(corner)
        assert type(info["success"]) is bool and not terminated and isinstance(reward, float)
        assert truncated == (t == spec.max_steps)
        assert obs["state"].dtype == np.float32
    frame = env.render()
    assert frame.shape[2] == 3 and frame.dtype == np.uint8 and 64 <= frame.shape[0] <= 256
    assert np.array_equal(env.reset(seed=1)[0]["state"], first), "same seed, same layout"
    env.close()
