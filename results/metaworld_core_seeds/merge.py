"""How results.{csv,md,png} here were put together (results/README.md has the commands):
the `imitari bench` rows of both tasks, beside the same networks' rows of
docs/generalisation.md sections 10 and 12 (10k or 5k updates, last checkpoint) and robomimic's own BC
(section 11), relabelled so the table says which is which; drawn by the bench's own table code.

    python results/metaworld_core_seeds/merge.py OUT/shelf-place/results.csv OUT/disassemble/results.csv [MORE.csv ...]

An earlier merge's results.csv is a valid input: its bench rows are kept, its relabelled rows
(no `reported_from`) dropped and added again, so new bench rows can join the committed ones.
"""

import sys
from pathlib import Path

from imitari import bench_table
from imitari.bench import write_outputs
from imitari.suites import SUITES

HERE = Path(__file__).parent
TASKS = ("metaworld/shelf-place", "metaworld/disassemble")
SECTION_10 = {"robomimic rel3": "bc", "tanh_gaussian rel3": "tanh_gaussian", "bc gaussian rel3": "bc:head=gaussian"}
SECTION_12 = {"gmm recipe": "bc:head=gmm", "mint obs": "mint", "vqbet obs": "vq_bet", "bct obs": "bc_transformer",
              "sdmlp obs": "streaming_diffusion:denoiser=mlp"}
"""The 10k- and 5k-update networks of the settings section 12 chose."""
PEER = "robomimic bc (its own code, 10k, last)"

rows, experts = [], set()
for path in sys.argv[1:]:  # each bench folder has its own expert row: keep one per task
    for r in bench_table.read_rows(Path(path)):
        if r["policy"] == bench_table.EXPERT:
            if r["task"] in experts:
                continue
            experts.add(r["task"])
        elif not r["reported_from"]:
            continue  # a relabelled row of an earlier merge, added again below
        rows.append(r)
for file, labels in (("bc_relative_scale_test.csv", SECTION_10), ("zoo_metaworld_test.csv", SECTION_12)):
    for r in bench_table.read_rows(HERE.parent / "generalisation" / file):
        if r["task"] in TASKS and r["policy"] in labels:
            rows.append({**r, "policy": f"{labels[r['policy']]} ({int(r['updates']) // 1000}k updates, last)"})
for r in bench_table.read_rows(HERE.parent / "generalisation" / "peer_robomimic_bc_test.csv"):
    if r["task"] in TASKS:
        rows.append({**r, "policy": PEER, "cpu_minutes": "" if r["cpu_minutes"] == "nan" else r["cpu_minutes"]})
csv_path = HERE / "results.csv"
csv_path.unlink(missing_ok=True)
for r in rows:
    bench_table.append_row(csv_path, r)
write_outputs(HERE, SUITES["metaworld-core"])
