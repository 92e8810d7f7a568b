"""All 50 Meta-World v3 manipulation tasks (`metaworld/<name>`), with their scripted experts.

Each env is Meta-World's goal-observable env class (the scripted experts read the goal from
the last three state entries) with fresh layouts: `_freeze_rand_vec = False` so every reset
draws a new layout, and `seeded_rand_vec = True` so it is drawn from the env's own rng, which
`reset(seed=s)` reseeds, instead of numpy's global rng (metaworld 3.1's default, which gives
seed s a different layout in every process). Seed s therefore gives the same layout in any
process and whatever the env did before.

Meta-World's own `step` never terminates and raises past `max_path_length`; this wrapper
terminates at the first success, truncates at 500 steps and clips actions to [-1, 1].
Observations are `{"state": float32 (39,)}` (`metaworld/<name>:pixels` adds an 84x84 camera
frame and observes only it, envs/pixels.py). The control rate is 80 Hz (timestep 2.5 ms,
frame skip 5). Frames come from one fixed viewpoint looking at the table from the front
left, closer than Meta-World's "corner2" camera (whose frames are also upside down) so that
objects and goals stay visible at 128x128; shadows and reflections are off (about 3x faster
to draw offscreen, and no worse for judging a rollout).

`metaworld` and `mujoco` are imported only when an env or expert is made, so the registry
works without the extra installed.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec, import_extra, register

TASKS: dict[str, str] = {
    "assembly": "pick up a nut and place it onto a peg",
    "basketball": "dunk the basketball into the basket",
    "bin-picking": "grasp a puck and move it from one bin to the other",
    "box-close": "grasp a lid and place it onto a box",
    "button-press": "press a button from the front",
    "button-press-topdown": "press a button from the top",
    "button-press-topdown-wall": "press a button from the top, behind a short wall",
    "button-press-wall": "press a button from the front, behind a short wall",
    "coffee-button": "push the button of a coffee machine",
    "coffee-pull": "pull a mug out from under a coffee machine",
    "coffee-push": "push a mug under a coffee machine",
    "dial-turn": "rotate a dial 180 degrees",
    "disassemble": "pick a nut off a peg",
    "door-close": "close a door with a revolving joint",
    "door-lock": "lock a door by rotating the lock clockwise",
    "door-open": "open a door with a revolving joint",
    "door-unlock": "unlock a door by rotating the lock counter-clockwise",
    "drawer-close": "push a drawer closed",
    "drawer-open": "pull a drawer open",
    "faucet-close": "rotate a faucet clockwise",
    "faucet-open": "rotate a faucet counter-clockwise",
    "hammer": "hammer a screw into the wall",
    "hand-insert": "move a puck into a hole in the table",
    "handle-press": "press a handle down",
    "handle-press-side": "press a handle down sideways",
    "handle-pull": "pull a handle up",
    "handle-pull-side": "pull a handle up sideways",
    "lever-pull": "pull a lever up 90 degrees",
    "peg-insert-side": "insert a peg sideways into a hole",
    "peg-unplug-side": "unplug a peg sideways",
    "pick-out-of-hole": "pick up a puck from a hole in the table",
    "pick-place": "pick up a puck and place it at a goal position",
    "pick-place-wall": "pick up a puck and place it at a goal position behind a wall",
    "plate-slide": "slide a plate into a cabinet",
    "plate-slide-back": "slide a plate out of a cabinet",
    "plate-slide-back-side": "slide a plate sideways out of a cabinet",
    "plate-slide-side": "slide a plate sideways into a cabinet",
    "push": "push a puck to a goal position",
    "push-back": "pull a puck back to a goal position",
    "push-wall": "push a puck to a goal position behind a wall",
    "reach": "move the gripper to a goal position",
    "reach-wall": "move the gripper to a goal position behind a wall",
    "shelf-place": "pick up a puck and place it onto a shelf",
    "soccer": "kick a soccer ball into a goal",
    "stick-pull": "grasp a stick and pull a box with it",
    "stick-push": "grasp a stick and push a box with it",
    "sweep": "sweep a puck off the table",
    "sweep-into": "sweep a puck into a hole",
    "window-close": "slide a window closed",
    "window-open": "slide a window open",
}
"""Every Meta-World v3 env name (without "-v3") -> a short description of the task. A literal,
not read from metaworld, so that listing tasks needs no simulator installed; a test checks it
against the envs that metaworld ships. Suites pick their tasks from it (BENCHMARKS.md:
`metaworld10`, and `metaworld-core`'s two "very hard" tasks shelf-place and disassemble)."""

POINTS = "state:0,4,11,36"
"""The 3-D points of Meta-World's 39-D state (`relative_points auto`): the hand, the first and
second object (zeros in a one-object task) and the goal; every v3 task lays its state out so."""
GENTLE_TRAINING = {"steps": 10_000, "batch_size": 100, "lr": 1e-4, "weight_decay": 0.0, "warmup_steps": 0,
                   "lr_schedule": "constant", "sampling": "epochs", "grad_clip": 0.0}
"""robomimic's BC schedule: 10k updates of batch 100, Adam 1e-4 constant, no decay or clipping."""
RAW_OBS = {"obs_norm": "none", "relative_points": POINTS, "relative_scale": 3.0}
"""Meta-World's observations: raw coordinates plus the point differences at 3x (a 2 cm gap reads 0.06)."""
WIDE_RAW_MLP = {"hidden": "1024,1024", **RAW_OBS}
"""robomimic's MLP on Meta-World's observations."""
ONE_STEP = {"obs_horizon": 1, "action_horizon": 1, "exec_horizon": 1, "action_norm": "none"}
"""robomimic's BC acts on one observation with one raw action."""
BC_DEFAULTS = {**GENTLE_TRAINING, "policy": {**WIDE_RAW_MLP, **ONE_STEP, "squash": True}}
"""How `bc` trains on Meta-World data unless told otherwise: robomimic's BC (one observation,
one action, tanh output, raw actions) plus the differences. Chosen on validation seeds of six
tasks over BC's generic default, robomimic's recipe without the differences, and scales 10 and
30 (docs/generalisation.md section 10)."""
BC_GMM_DEFAULTS = {**GENTLE_TRAINING, "steps": 40_000, "policy": {**WIDE_RAW_MLP, **ONE_STEP}}
"""How `bc:head=gmm` trains on Meta-World data: `bc`'s settings under the mixture head (robomimic's
BC-GMM network), four times as long. Chosen on validation seeds of six tasks over its generic
settings, those with only Meta-World's observations, and the same at 10k updates
(docs/generalisation.md section 12)."""
TANH_GAUSSIAN_DEFAULTS = {**GENTLE_TRAINING, "policy": dict(WIDE_RAW_MLP)}
"""How `tanh_gaussian` trains on Meta-World data unless told otherwise: the same network,
schedule and differences under its tanh-Gaussian head (acting with the mean); the best six-task
validation mean measured (section 10; its generic settings were not measured on these tasks)."""
OBSERVATIONS_ONLY = {"policy": dict(RAW_OBS)}
"""How `mint`, `vq_bet`, `bc_transformer` and `streaming_diffusion:denoiser=mlp` train on
Meta-World data: Meta-World's observations under their own networks and schedules; each ahead of
its generic settings on the six tasks' validation seeds with every training seed
(docs/generalisation.md section 12)."""
MAX_STEPS = 500
"""Meta-World's `max_path_length`."""
FPS = 80.0
"""Control rate: 1 / (timestep 0.0025 s * frame skip 5)."""
FRAME_SIZE = 128
CAMERA_SIZE = 84
"""Frame side of the `metaworld/<name>:pixels` variants (envs/pixels.py), robomimic's and
Diffusion Policy's image size."""
VIEW_LOOKAT = (0.0, 0.72, 0.12)
VIEW_DISTANCE = 1.25
VIEW_AZIMUTH = 135.0
VIEW_ELEVATION = -28.0
"""The fixed render viewpoint: a MuJoCo free camera (metres, degrees)."""
_EXTRA = "metaworld"


def default_mujoco_gl() -> None:
    """Pick MuJoCo's offscreen backend before mujoco is first imported, unless the user did.

    Without a display MuJoCo's default (GLFW) cannot render; OSMesa (Debian's libosmesa6) or
    EGL can. A backend whose library is missing would make `import mujoco` itself fail, so one
    is chosen only when its library is found; otherwise rendering fails later and evaluation
    skips videos with a one-line message.
    """
    if "MUJOCO_GL" in os.environ or os.environ.get("DISPLAY"):
        return
    for backend, library in (("osmesa", "OSMesa"), ("egl", "EGL")):
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return


def _import_metaworld(task: str) -> None:
    """Import metaworld (and mujoco, which it needs), or raise MissingExtraError."""
    default_mujoco_gl()
    import_extra("mujoco", task=task, extra=_EXTRA)
    import_extra("metaworld", task=task, extra=_EXTRA)


class MetaWorldEnv(gym.Env[dict[str, Any], np.ndarray]):
    """One Meta-World v3 task behind the imitari env contract (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, name: str, *, render: bool = False) -> None:
        task = f"metaworld/{name}"
        _import_metaworld(task)
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

        # seed=0 keeps the constructor's own reset off numpy's global rng.
        self._env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{name}-v3-goal-observable"](seed=0)  # type: ignore[call-arg]
        self._env._freeze_rand_vec = False
        self._env.seeded_rand_vec = True
        self.name = name
        self.render_mode = "rgb_array" if render else None
        self.observation_space = spaces.Dict(
            {"state": spaces.Box(-np.inf, np.inf, self._env.observation_space.shape, np.float32)}
        )
        self.action_space = spaces.Box(-1.0, 1.0, self._env.action_space.shape, np.float32)
        self._renderers: dict[int, Any] = {}
        self._camera: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """A fresh layout: the seed's when given, else the next one from the env's rng."""
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)
        obs, _ = self._env.reset()
        return {"state": obs.astype(np.float32)}, {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._env.curr_path_length >= MAX_STEPS:
            raise RuntimeError(f"metaworld/{self.name}: the episode was truncated; call reset()")
        clipped = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_space.shape), -1.0, 1.0)
        obs, reward, _, _, info = self._env.step(clipped)
        info["success"] = success = bool(info["success"])
        truncated = self._env.curr_path_length >= MAX_STEPS
        return {"state": obs.astype(np.float32)}, float(reward), success, truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """A FRAME_SIZE x FRAME_SIZE RGB frame from the fixed viewpoint (`VIEW_*`); None if made
        without `render=True`."""
        return None if self.render_mode is None else self.camera(FRAME_SIZE)

    def camera(self, size: int) -> np.ndarray:
        """A size x size RGB frame from the fixed viewpoint (one offscreen renderer per size)."""
        import mujoco

        if self._camera is None:
            self._camera = mujoco.MjvCamera()
            self._camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            self._camera.lookat[:] = VIEW_LOOKAT
            self._camera.distance = VIEW_DISTANCE
            self._camera.azimuth = VIEW_AZIMUTH
            self._camera.elevation = VIEW_ELEVATION
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = mujoco.Renderer(self._env.model, size, size)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        renderer.update_scene(self._env.data, camera=self._camera)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._env.close()


class MetaWorldExpert:
    """Meta-World's scripted policy for the task (`metaworld.policies.ENV_POLICY_MAP`).

    Deterministic and memoryless: it reads object and goal positions from the state.
    """

    def __init__(self, name: str) -> None:
        _import_metaworld(f"metaworld/{name}")
        from metaworld.policies import ENV_POLICY_MAP

        self._policy = ENV_POLICY_MAP[f"{name}-v3"]()  # type: ignore[abstract]

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the scripted policy keeps no state between steps."""

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with warnings.catch_warnings():
            # The policies warn that their gains exceed [-1, 1]; the env clips, as intended.
            warnings.filterwarnings("ignore", message="Constant", category=UserWarning)
            action = self._policy.get_action(np.asarray(obs["state"], dtype=np.float64))
        return np.asarray(action, dtype=np.float32)


def make_env(name: str, *, render: bool = False) -> MetaWorldEnv:
    """The env of task `metaworld/<name>`."""
    return MetaWorldEnv(name, render=render)


def make_expert(name: str, env: gym.Env) -> MetaWorldExpert:
    """The scripted expert of task `metaworld/<name>` (it needs nothing from `env`)."""
    return MetaWorldExpert(name)


for _name, _what in TASKS.items():
    register(TaskSpec(
        name=f"metaworld/{_name}",
        make=functools.partial(make_env, _name),
        max_steps=MAX_STEPS,
        obs_keys=("state",),
        fps=FPS,
        description=f"Meta-World v3 {_name}: {_what}; state (39,)",
        make_expert=functools.partial(make_expert, _name),
        extra=_EXTRA,
        pixels=CAMERA_SIZE,
        points=POINTS,
        policy_defaults={"bc": BC_DEFAULTS, "bc:head=gmm": BC_GMM_DEFAULTS, "tanh_gaussian": TANH_GAUSSIAN_DEFAULTS,
                         "mint": OBSERVATIONS_ONLY, "vq_bet": OBSERVATIONS_ONLY,
                         "bc_transformer": OBSERVATIONS_ONLY, "streaming_diffusion:denoiser=mlp": OBSERVATIONS_ONLY},
    ))
