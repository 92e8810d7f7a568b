"""Minari's own code on Minari datasets; prints what it sees (or wrote) as JSON.

Run with the minari peer venv's python:
    python peer_minari.py read DATASET_DIR        # MinariDataset(DATASET_DIR/data): episodes, first episode
    python peer_minari.py write ROOT NAME-v0      # DataCollector on a tiny Dict-observation env, 4 episodes
"""

import json
import os
import sys

import gymnasium as gym
import numpy as np

if sys.argv[1] == "read":
    from minari import MinariDataset

    ds = MinariDataset(os.path.join(sys.argv[2], "data"))
    ep = next(ds.iterate_episodes())
    obs = ep.observations
    print(json.dumps({"episodes": ds.total_episodes, "steps": ds.total_steps, "id": ds.spec.dataset_id,
                      "obs_keys": sorted(obs), "obs_rows": len(next(iter(obs.values()))), "actions": ep.actions.tolist(),
                      "terminations": ep.terminations.tolist(), "action_shape": list(ds.action_space.shape)}))
else:
    os.environ["MINARI_DATASETS_PATH"] = sys.argv[2]
    from minari import DataCollector

    class Dot(gym.Env):
        observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-10, 10, (2,), np.float32),
                                             "goal": gym.spaces.Box(-10, 10, (2,), np.float32)})
        action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.pos, self.goal, self.t = np.zeros(2, np.float32), self.np_random.uniform(-3, 3, 2).astype(np.float32), 0
            return {"pos": self.pos.copy(), "goal": self.goal}, {"success": False}

        def step(self, action):
            self.pos, self.t = self.pos + np.clip(action, -1, 1).astype(np.float32), self.t + 1
            done = bool(np.linalg.norm(self.pos - self.goal) < 0.5)
            return {"pos": self.pos.copy(), "goal": self.goal}, float(done), done, self.t >= 8, {"success": done}

    env = DataCollector(Dot())
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(np.clip(obs["goal"] - obs["pos"], -1, 1))
            done = term or trunc
    ds = env.create_dataset(dataset_id=sys.argv[3], algorithm_name="greedy")
    print(json.dumps({"episodes": ds.total_episodes, "steps": ds.total_steps}))
