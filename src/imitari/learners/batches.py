"""Training batches of dataset windows, a function of (seed, step) alone.

`WindowBatches.batch(step)` gathers the windows of update `step`: their current steps drawn
uniformly with replacement ("uniform"), or ("epochs") positions step*B .. step*B+B-1 of a
sequence of passes, each a permutation of all steps seeded by (seed, pass) -- robomimic's and
LeRobot's loaders. Either way a resumed run draws exactly the batches an uninterrupted one does.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from imitari.data.windows import WindowSampler


class WindowBatches:
    """The batches a run draws from a `WindowSampler`."""

    def __init__(self, sampler: WindowSampler, *, batch_size: int, seed: int,
                 sampling: Literal["uniform", "epochs"] = "uniform") -> None:
        self.sampler, self.batch_size, self.seed, self.sampling = sampler, batch_size, seed, sampling

    def steps_of(self, step: int) -> np.ndarray:
        """The current steps of update `step`'s windows."""
        if self.sampling == "uniform":
            return self.sampler.draw(self.batch_size, np.random.default_rng([self.seed, step]))
        steps, size = self.sampler.steps, self.batch_size
        passes, index = np.divmod(np.arange(step * size, (step + 1) * size), len(steps))
        out = np.empty(size, dtype=np.int64)
        for p in np.unique(passes):
            order = np.random.default_rng([self.seed, int(p), 11]).permutation(len(steps))
            out[passes == p] = steps[order[index[passes == p]]]
        return out

    def batch(self, step: int) -> dict[str, Any]:
        """The windows of update `step` (numpy, the `WindowSampler` layout)."""
        return self.sampler.gather(self.steps_of(step))
