"""Read a robomimic HDF5 file with robomimic 0.3.0's own loaders; print what they see as JSON.

Run with the robomimic peer venv's python (benchmarks/peers/robomimic_venv.sh):
    python peer_robomimic.py FILE.hdf5 OBS_KEY FILTER_KEY
"""

import json
import sys

import numpy as np
import robomimic.utils.file_utils as FileUtils
import robomimic.utils.obs_utils as ObsUtils
from robomimic.utils.dataset import SequenceDataset

path, key, filter_key = sys.argv[1:4]
ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": [key], "rgb": []}})
data = SequenceDataset(path, obs_keys=[key], dataset_keys=["actions", "rewards", "dones"], seq_length=1,
                       hdf5_cache_mode="all")
subset = SequenceDataset(path, obs_keys=[key], dataset_keys=["actions"], filter_by_attribute=filter_key)
item = data[0]
shapes = FileUtils.get_shape_metadata_from_dataset(path, all_obs_keys=[key])
print(json.dumps({
    "demos": list(data.demos), "samples": len(data), "filter_demos": list(subset.demos),
    "obs0": np.asarray(item["obs"][key][0]).tolist(), "action0": np.asarray(item["actions"][0]).tolist(),
    "next_obs0": np.asarray(item["next_obs"][key][0]).tolist(),
    "env_name": FileUtils.get_env_metadata_from_dataset(path)["env_name"],
    "action_dim": shapes["ac_dim"], "obs_shape": list(shapes["all_shapes"][key]),
}))
