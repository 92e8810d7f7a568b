"""Regenerate the golden outputs that tests/policies/test_policy_golden.py compares against.

    .venv/bin/python tests/policies/make_golden.py          # all registered golden cases
    .venv/bin/python tests/policies/make_golden.py bc       # one of them

Each case builds a policy with its default config (plus the case's overrides, e.g. BC's GMM
head) and fixed seeds, and records the loss on a fixed synthetic batch and a predicted chunk;
stochastic action heads also record a chunk sampled with a fixed generator. Run this only when a change to a policy's numbers
is intended, and commit the files in tests/policies/golden/ with that change.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from policy_testdata import SHAPES, reference_stats, synthetic_windows
from safetensors.torch import save_file

from imitari.policies.registry import get_policy, make_policy

GOLDEN_DIR = Path(__file__).with_name("golden")
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "bc": ("bc", {}),
    "diffusion": ("diffusion", {}),
    "bc_gmm": ("bc", {"head": "gmm"}),
    "streaming_diffusion": ("streaming_diffusion", {}),
    "streaming_diffusion_mlp": ("streaming_diffusion", {"denoiser": "mlp"}),
    "diffusion_mlp": ("diffusion", {"denoiser": "mlp"}),
    "diffusion_transformer": ("diffusion_transformer", {}),
    "diffusion_flow": ("diffusion", {"objective": "flow"}),
    "mint": ("mint", {"tokenizer_steps": 0}),
    "bc_rnn": ("bc_rnn", {"head": "gmm"}),
    "bc_transformer": ("bc_transformer", {}),
    "act": ("act", {}),
    "vq_bet": ("vq_bet", {"vqvae_steps": 0}),
    "tanh_gaussian": ("tanh_gaussian", {}),
    "procedure_cloning": ("procedure_cloning", {}),
}
"""Golden file name -> (registered policy, config overrides)."""


def golden_case(name: str) -> dict[str, torch.Tensor]:
    """Loss on a fixed batch and a chunk predicted from its first two windows."""
    policy_name, overrides = CASES[name]
    _, config_cls = get_policy(policy_name)
    torch.manual_seed(0)
    policy = make_policy(policy_name, config_cls(**overrides), shapes=SHAPES, stats=reference_stats())
    config = policy.config
    batch = synthetic_windows(4, obs_horizon=config.obs_horizon, action_horizon=config.action_horizon, seed=0)
    loss, _ = policy.loss(batch)
    obs = {k: v[:2] for k, v in batch["obs"].items()}
    with torch.no_grad():
        out = {"loss": loss.detach().reshape(1), "chunk": policy.eval().predict_chunk(obs).contiguous()}
        head = getattr(policy, "head", None)
        if head is not None and head.stochastic:
            sampler = make_policy(policy_name, config_cls(**overrides, sample_actions=True), shapes=SHAPES,
                                  stats=reference_stats())
            sampler.load_state_dict(policy.state_dict())
            out["sample"] = sampler.eval().predict_chunk(obs, generator=torch.Generator().manual_seed(7)).contiguous()
    return out


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name in names or CASES:
        path = GOLDEN_DIR / f"{name}.safetensors"
        save_file(golden_case(name), str(path))
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
