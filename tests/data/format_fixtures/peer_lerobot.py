"""LeRobot's own code on LeRobot v3.0 folders; prints what it sees (or wrote) as JSON.

Run with the lerobot peer venv's python:
    python peer_lerobot.py read ROOT              # LeRobotDataset(root=ROOT): counts, tasks, frame 0
    python peer_lerobot.py write IMITARI_DS ROOT  # LeRobotDataset.create + add_frame + save_episode,
                                                  # with a small rendered image feature stored as video
"""

import json
import sys

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

if sys.argv[1] == "read":
    ds = LeRobotDataset("local/peer", root=sys.argv[2])
    item = ds[0]
    print(json.dumps({"episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps, "task0": item["task"],
                      "state0": item["observation.state"].tolist(), "action0": item["action"].tolist()}))
else:
    from imitari.data.store import Dataset

    src = Dataset.open(sys.argv[2])
    features = {"observation.state": {"dtype": "float32", "shape": (4,), "names": None},
                "action": {"dtype": "float32", "shape": (2,), "names": ["dx", "dy"]},
                "observation.images.top": {"dtype": "video", "shape": (16, 16, 3), "names": ["height", "width", "channels"]}}
    # (no scalar feature: this LeRobot with numpy 2.4 fails to encode (1,)-shaped values)
    ds = LeRobotDataset.create("local/peer", fps=10, root=sys.argv[3], features=features, use_videos=True)
    for i in range(src.n_episodes):
        ep = src.episode(i)
        for t in range(len(ep["action"])):
            frame = np.full((16, 16, 3), (40 * i + 8 * t) % 256, dtype=np.uint8)
            ds.add_frame({"observation.state": ep["obs.state"][t], "action": ep["action"][t],
                          "observation.images.top": frame,
                          "task": f"reach goal {i % 2}"})
        ds.save_episode()
    ds.finalize()
    print(json.dumps({"episodes": ds.num_episodes, "frames": ds.num_frames}))
