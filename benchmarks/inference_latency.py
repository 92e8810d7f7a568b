"""Inference latency of every policy at batch 1 on this CPU: per `act()` step and per network call.

For each configuration, one line:

    <name> step_p50=<ms> step_p99=<ms> call=<ms> call_per_exec=<ms> params=<n>

`step_*` are percentiles over every `act()` of whole episodes (the queue pops of chunked
policies included, so they show both the cheap steps and the ones that run the network);
`call` is the median time of one network inference (`predict_chunk`, one chunk for chunked
policies); `call_per_exec` is `call` divided by the actions executed per chunk (one with
temporal ensembling, which predicts a chunk every step). Latency does not
depend on the weights, so policies are built untrained at their default sizes on a Meta-World
layout (39-D state, 4-D action); observations are a smooth random walk. The last lines compare
the samplers with the 100-step DDPM chain measured in the same run (ratios, since absolute
figures move with the machine's load).

    python benchmarks/inference_latency.py [--episodes 2] [--steps 150] [--threads 1] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

from imitari.config import from_dict
from imitari.policies.base import Policy, Shapes
from imitari.policies.registry import get_policy, policy_names

SHAPES = Shapes(obs={"state": (39,)}, action=(4,))
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "diffusion/ddpm100": ("diffusion", {"sampler": "ddpm"}),
    "diffusion/ddim10": ("diffusion", {"sampler": "ddim", "num_inference_steps": 10}),
    "diffusion/flow10": ("diffusion", {"objective": "flow", "num_inference_steps": 10}),
    "diffusion/mlp_ddim10": ("diffusion", {"denoiser": "mlp"}),
    "diffusion/mlp_flow10": ("diffusion", {"denoiser": "mlp", "objective": "flow"}),
    "streaming_diffusion/mlp": ("streaming_diffusion", {"denoiser": "mlp"}),
    "bc/chunks": ("bc", {"temporal_ensemble": False}),  # BC before temporal ensembling became its default
}
"""Named sampler configurations beside every registered policy at its defaults."""


def configurations() -> dict[str, tuple[str, dict[str, Any]]]:
    configs = {name: (name, {}) for name in policy_names()}
    configs.update(VARIANTS)
    return configs


def build(name: str, overrides: dict[str, Any]) -> Policy:
    policy_cls, config_cls = get_policy(name)
    stats = {"obs.state": {"mean": [0.0] * 39, "std": [1.0] * 39, "min": [-1.0] * 39, "max": [1.0] * 39},
             "action": {"mean": [0.0] * 4, "std": [1.0] * 4, "min": [-1.0] * 4, "max": [1.0] * 4}}
    torch.manual_seed(0)
    return policy_cls(from_dict(config_cls, overrides, where="policy."), shapes=SHAPES, stats=stats).eval()


def episode_observations(steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.normal(scale=0.05, size=(steps, 1, 39)), axis=0), -1, 1).astype(np.float32)


def measure(policy: Policy, *, episodes: int, steps: int, calls: int) -> dict[str, float]:
    step_ms: list[float] = []
    with torch.inference_mode():
        policy.reset()
        policy.act({"state": episode_observations(1, 999)[0]})  # warm-up: allocator, kernel choice
        for ep in range(episodes):
            policy.reset(env_ids=[0], seeds=[ep])
            for obs in episode_observations(steps, ep):
                start = time.perf_counter()
                policy.act({"state": obs})
                step_ms.append(1e3 * (time.perf_counter() - start))
        window = {"state": torch.as_tensor(episode_observations(policy.config.obs_horizon, 0)[:, 0])[None]}
        call_ms = []
        for i in range(calls):
            start = time.perf_counter()
            policy.predict_chunk(window, generator=torch.Generator().manual_seed(i))
            call_ms.append(1e3 * (time.perf_counter() - start))
    call = float(np.median(call_ms))
    return {"step_p50": float(np.percentile(step_ms, 50)), "step_p99": float(np.percentile(step_ms, 99)),
            "call": call, "call_per_exec": call / (1 if policy.config.temporal_ensemble else policy.config.exec_horizon)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="act() steps per episode (shelf-place's expert: ~92)")
    parser.add_argument("--calls", type=int, default=10, help="network calls timed for `call`")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated configuration names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = configurations()
    wanted = [n for n in args.only.split(",") if n] or list(configs)
    unknown = sorted(set(wanted) - set(configs))
    if unknown:
        parser.error(f"unknown configurations {unknown}; known: {', '.join(configs)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch 1, 39-D state, 4-D action")
    results = {}
    for name in wanted:
        policy_name, overrides = configs[name]
        try:
            policy = build(policy_name, overrides)
        except ValueError as exc:  # a variant whose config key this version lacks
            print(f"{name} skipped: {exc}")
            continue
        r = results[name] = measure(policy, episodes=args.episodes, steps=args.steps, calls=args.calls)
        print(f"{name} step_p50={r['step_p50']:.2f} step_p99={r['step_p99']:.2f} call={r['call']:.2f} "
              f"call_per_exec={r['call_per_exec']:.2f} params={policy.num_parameters()}", flush=True)
    base = results.get("diffusion/ddpm100")
    if base:
        for name in ("diffusion/ddim10", "diffusion/flow10", "diffusion/mlp_ddim10", "diffusion/mlp_flow10",
                     "streaming_diffusion", "streaming_diffusion/mlp"):
            if name in results:
                r = results[name]
                print(f"{name}/ddpm100 call = {r['call'] / base['call']:.4f}x, "
                      f"step_p99 = {r['step_p99'] / base['step_p99']:.4f}x")


if __name__ == "__main__":
    main()
