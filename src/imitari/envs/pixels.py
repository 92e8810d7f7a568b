"""Pixel variants of tasks: `<task>:pixels` observes a camera frame `"image"` (uint8, H x W x 3).

A task whose env can draw itself (`camera(size)`) declares `TaskSpec.pixels` (the frame side),
and `get_task("<task>:pixels")` builds this variant from it: the same env, success, episode
length and expert, with the frame added to every observation. Only `"image"` is an observation
key of the variant, so collected datasets and the policies trained on them see pixels only;
the state stays in the observation dict for the task's expert, which reads it (experts act on
observations, never on the env), and is never stored or given to a policy.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from imitari.envs.registry import TaskSpec

SUFFIX = ":pixels"
IMAGE_KEY = "image"


class PixelObs(gym.ObservationWrapper[dict[str, Any], np.ndarray, dict[str, Any]]):
    """Adds `obs["image"]`, the env's `camera(size)` frame after every reset and step."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        self.size = size
        inner = env.observation_space
        assert isinstance(inner, spaces.Dict), "imitari envs observe dicts"
        self.observation_space = spaces.Dict(
            {**inner.spaces, IMAGE_KEY: spaces.Box(0, 255, (size, size, 3), np.uint8)})

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, IMAGE_KEY: self.env.unwrapped.camera(self.size)}  # type: ignore[attr-defined]


def _make(spec: TaskSpec, *, render: bool = False) -> gym.Env:
    assert spec.pixels is not None
    return PixelObs(spec.make(render=render), spec.pixels)


def pixel_variant(spec: TaskSpec) -> TaskSpec:
    """The `:pixels` variant of a task that declares `pixels`."""
    assert spec.pixels is not None
    return dataclasses.replace(
        spec, name=spec.name + SUFFIX, make=functools.partial(_make, spec), obs_keys=(IMAGE_KEY,),
        description=f"{spec.description}; observes only a {spec.pixels}x{spec.pixels} camera frame",
        pixels=None,
    )
