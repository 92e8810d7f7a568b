"""Success of trained checkpoints under different inference settings, on the same seeds.

The latency targets of the policy zoo hold only "at equal success": DDIM-10 and flow must do
as well as the 100-step DDPM chain, and streaming diffusion as well as the full sampler. This
evaluates each `LABEL=RUN[:key=value...]` (a run directory or checkpoint, with inference-time
overrides of its policy config) on the same evaluation seeds and prints success with a 95%
Wilson interval, then whether each interval overlaps the first configuration's.

    python benchmarks/sampler_success.py --task metaworld/shelf-place --seed-start 1000 \\
        ddpm100=results/metaworld_core/runs/metaworld-shelf-place/diffusion:sampler=ddpm \\
        ddim10=results/metaworld_core/runs/metaworld-shelf-place/diffusion \\
        streaming=results/metaworld_core/runs/metaworld-shelf-place/streaming_diffusion
"""

from __future__ import annotations

import argparse

import torch

from imitari.cli import user_errors
from imitari.config import parse_overrides
from imitari.eval.metrics import summarize
from imitari.eval.rollout import eval_seeds, evaluate
from imitari.policies.loading import load_policy


def parse(entry: str) -> tuple[str, str, dict]:
    label, sep, rest = entry.partition("=")
    if not sep:
        raise SystemExit(f"'{entry}' is not LABEL=RUN[:key=value...]")
    run, *fields = rest.split(":")
    args = [item for f in fields for item in (f"--{f.partition('=')[0]}", f.partition("=")[2])]
    return label, run, parse_overrides(args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="+", help="LABEL=RUN[:key=value...]; the first is the reference")
    parser.add_argument("--task", required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed-start", type=int, default=1000)
    parser.add_argument("--num-envs", type=int, default=25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = eval_seeds(args.episodes, start=args.seed_start)
    try:  # every configuration loads before any is evaluated, so a bad override costs nothing
        policies = [(label, load_policy(run, overrides=overrides))
                    for label, run, overrides in map(parse, args.configs)]
    except user_errors() as err:
        raise SystemExit(f"sampler_success: {err}") from None
    rows = []
    for label, policy in policies:
        results, _ = evaluate(policy, args.task, seeds=seeds, num_envs=args.num_envs, workers=args.workers,
                              progress=False)
        s = summarize(results)
        rows.append((label, s))
        print(f"{label}: {s.successes}/{s.n} = {s.success_rate:.0%} (95% CI {s.ci_low:.0%}-{s.ci_high:.0%})",
              flush=True)
    ref_label, ref = rows[0]
    for label, s in rows[1:]:
        overlap = s.ci_low <= ref.ci_high and ref.ci_low <= s.ci_high
        inside = ref.ci_low <= s.success_rate <= ref.ci_high
        print(f"{label} vs {ref_label}: success inside the reference's interval: {inside}; intervals overlap: {overlap}")


if __name__ == "__main__":
    main()
