"""RLIF on builtin/reach (docs/interactive.md), reported on test seeds 1000-1049: RLIF with the
clean and two noisy (suboptimal) experts, SAC on the task's own reward, and the noisy experts
themselves, 3 training seeds each, 10k updates. Appends one JSON line per run to
OUT/compare.jsonl; a rerun skips finished ones.

    python benchmarks/rlif_reach.py [STEPS] [OUT]      # defaults: 10000 runs/rlif_reach
"""
import json, sys, time
from pathlib import Path
import numpy as np
from imitari.learners.loop import train
from imitari.policies.loading import find_checkpoint, load_policy
from imitari.eval.rollout import evaluate
from imitari.eval.metrics import summarize
from imitari.envs.experts import ExpertPolicy

OUT = Path(sys.argv[2] if len(sys.argv) > 2 else 'runs/rlif_reach'); OUT.mkdir(parents=True, exist_ok=True)
LOG = OUT / 'compare.jsonl'
done = {json.loads(l)['name'] for l in open(LOG)} if LOG.exists() else set()
SEEDS = range(1000, 1050)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 10000


class Noisy:
    """The task expert with Gaussian action noise (clipped), keyed by (episode seed, step)."""
    def __init__(self, std):
        self.expert, self.std, self.t, self.s = ExpertPolicy('builtin/reach'), std, {}, {}
    def reset(self, env_ids=None, *, seeds=None):
        self.expert.reset(env_ids, seeds=seeds)
        for i, s in zip(env_ids, seeds):
            self.t[i], self.s[i] = 0, s
    def act(self, obs):
        a = self.expert.act(obs)
        n = np.stack([np.random.default_rng([7, self.s.get(i, 0), self.t.get(i, 0)]).normal(size=2) for i in range(len(a))])
        for i in range(len(a)):
            self.t[i] = self.t.get(i, 0) + 1
        return np.clip(a + self.std * n, -1, 1).astype(np.float32)


def record(name, summary, **extra):
    with open(LOG, 'a') as f:
        f.write(json.dumps({'name': name, 'success': summary.success_rate, 'length': summary.mean_length, **extra}) + '\n')
    print(name, summary.success_rate, summary.mean_length, flush=True)


base = {'env': 'builtin/reach', 'policy': {'hidden': [64, 64]}, 'num_envs': 4, 'threads': 1, 'progress': False,
        'log_every': 500, 'ckpt_every': 100000, 'steps': STEPS, 'batch_size': 128}
sac = {'learning_starts': 500, 'critic_hidden': [64, 64], 'init_temperature': 0.1}
for noise in (0.0, 0.5, 1.0):
    name = f'expert noise {noise}'
    if name not in done:
        r, _ = evaluate(Noisy(noise), 'builtin/reach', seeds=SEEDS, num_envs=10, workers=1, progress=False)
        record(name, summarize(r))
for seed in (0, 1, 2):
    runs = {f'rlif noise 0.0 seed {seed}': ('rlif', {'tolerance': 0.5}),
            f'rlif noise 0.5 seed {seed}': ('rlif', {'tolerance': 0.5, 'expert_noise': 0.5}),
            f'rlif noise 1.0 seed {seed}': ('rlif', {'tolerance': 0.5, 'expert_noise': 1.0}),
            f'sac task reward seed {seed}': ('sac', {})}
    for name, (learner, lc) in runs.items():
        if name in done:
            continue
        out = OUT / name.replace(' ', '_')
        if out.exists():
            import shutil; shutil.rmtree(out)
        t = time.process_time()
        run = train({**base, 'seed': seed, 'learner': learner, 'out': str(out), 'learner_config': {**sac, **lc}})
        r, _ = evaluate(load_policy(find_checkpoint(run)), 'builtin/reach', seeds=SEEDS, num_envs=10, workers=1, progress=False)
        last = [json.loads(l) for l in open(Path(run) / 'metrics.jsonl')][-1]
        record(name, summarize(r), cpu_s=round(time.process_time() - t, 1), env_steps=last.get('env_steps'),
               takeovers_per_episode=last.get('rollout/takeovers'))
