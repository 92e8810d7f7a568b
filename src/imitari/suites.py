"""Benchmark suites for `imitari bench`: which tasks, demos, evaluation seeds, budget and policies.

A suite is data, kept in one place so a table's protocol can be read off it: every policy is
trained on the same demonstrations of each task under the same budget of process CPU time, and
evaluated on the same seeds, disjoint from the demos (docs/bench.md). Policy specs are
`NAME[:key=value...]` strings; a default spec whose policy is not registered (yet) is skipped.

A suite has two sets of evaluation seeds (`imitari.eval.seeds`): the *test* seeds its results
are reported on (`eval_seed_start` upward, which must stay out of the validation range), and
as many *validation* seeds (2000 upward), for choosing settings without touching the test seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from imitari.config import ConfigError, closest
from imitari.eval.seeds import check_test_seeds, validation_seeds

SPLITS = ("test", "validation")
"""Which evaluation seeds a bench evaluates on: the reported (test) ones or the validation ones."""


def check_split(split: str) -> str:
    """`split` if it is one of SPLITS, else a ConfigError naming the closest."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)} (got {split!r}){closest(split, SPLITS)}")
    return split


@dataclass(frozen=True)
class Suite:
    """One benchmark protocol."""

    name: str
    description: str
    tasks: tuple[str, ...]
    """Registered task names, in table order."""
    demos: int
    """Scripted demonstrations per task, on seeds demo_seed_start .. demo_seed_start + demos - 1."""
    eval_episodes: int
    """Evaluation episodes per policy and task, on seeds eval_seed_start upward."""
    eval_seed_start: int
    budget_cpu_minutes: float
    """Process CPU time each training run may spend (all threads of the training process)."""
    policies: tuple[str, ...]
    """Default policy specs."""
    optional_tasks: tuple[str, ...] = ()
    """Tasks run only when registered (e.g. one another module adds)."""
    demo_seed_start: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields every run of the suite uses, beyond the defaults (e.g. batch_size)."""
    workers: int | None = None
    """Env worker processes for collection and evaluation; None: one per CPU; 1: in this process."""
    demo_counts: tuple[int, ...] = ()
    """A learning-curve suite: every policy is trained once per count N on the demos of the first
    N demo seeds (`demos` is then the largest count); () trains on all `demos`."""
    normalised: bool = False
    """Tasks without a success criterion (locomotion): also evaluate uniformly random actions and
    table the normalised return, (R - R_random) / (R_expert - R_random), on the same seeds."""

    def __post_init__(self) -> None:
        if self.demos < 1 or self.eval_episodes < 1:
            raise ConfigError(f"suite {self.name}: demos and eval_episodes must be >= 1")
        if self.demo_counts and (min(self.demo_counts) < 1 or max(self.demo_counts) != self.demos
                                 or sorted(set(self.demo_counts)) != list(self.demo_counts)):
            raise ConfigError(f"suite {self.name}: demo_counts must increase from >= 1 to demos={self.demos} "
                              f"(got {self.demo_counts})")
        if not self.budget_cpu_minutes > 0:
            raise ConfigError(f"suite {self.name}: budget_cpu_minutes must be > 0 (got {self.budget_cpu_minutes})")
        demo_seeds = self.demo_seeds()
        eval_seeds = range(self.eval_seed_start, self.eval_seed_start + self.eval_episodes)
        if set(demo_seeds) & set(eval_seeds):
            raise ConfigError(
                f"suite {self.name}: evaluation seeds {eval_seeds.start}-{eval_seeds.stop - 1} overlap the demo "
                f"seeds {demo_seeds.start}-{demo_seeds.stop - 1}; start the evaluation above them"
            )
        check_test_seeds(eval_seeds, what=f"suite {self.name}: evaluation seeds")

    def demo_seeds(self) -> range:
        return range(self.demo_seed_start, self.demo_seed_start + self.demos)

    def eval_seeds(self, split: str = "test") -> list[int]:
        """The `eval_episodes` seeds of a split: test from `eval_seed_start`, validation from
        the validation range (skipping any demo seed)."""
        if check_split(split) == "validation":
            return validation_seeds(self.eval_episodes, exclude=self.demo_seeds())
        return list(range(self.eval_seed_start, self.eval_seed_start + self.eval_episodes))

    def counts(self) -> list[int | None]:
        """The demo counts runs are trained on; [None] (all demos) for a suite without a curve."""
        return list(self.demo_counts) or [None]

    def with_overrides(self, **changes: Any) -> Suite:
        """A copy with some fields changed (None values are ignored), checked again; a learning
        curve's counts above a lowered `demos` are dropped."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if self.demo_counts and "demos" in changes and "demo_counts" not in changes:
            changes["demo_counts"] = tuple(n for n in self.demo_counts if n < changes["demos"]) + (changes["demos"],)
        return replace(self, **changes)

    def registered_tasks(self) -> list[str]:
        """`tasks` plus the optional tasks that are registered, in table order."""
        from imitari.envs.registry import list_tasks

        known = set(list_tasks())
        return list(self.tasks) + [t for t in self.optional_tasks if t in known]


SELECT_BEST = {"eval_every_cpu_seconds": 120.0, "eval_episodes": 20}
"""Train fields of the Meta-World suites: evaluate on 20 validation seeds every 2 CPU-minutes
(the rollouts count against the budget) and report the best checkpoint (robomimic's choice)."""

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            name="metaworld-core",
            description="Meta-World v3 'very hard' shelf-place and disassemble from 10 scripted demos each",
            tasks=("metaworld/shelf-place", "metaworld/disassemble"),
            demos=10,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=16.0,
            policies=(
                "bc", "bc:head=gmm", "bc_rnn:head=gmm", "bc_transformer", "act", "diffusion",
                "diffusion:denoiser=mlp", "diffusion_transformer", "diffusion:objective=flow", "vq_bet",
                "streaming_diffusion", "mint", "streaming_diffusion:denoiser=mlp",
            ),
            train=SELECT_BEST,
        ),
        Suite(
            name="metaworld-six",
            description="six Meta-World v3 grasping tasks from 10 scripted demos each: the set defaults are "
                        "chosen on (`--split validation`) and reported on",
            tasks=("metaworld/shelf-place", "metaworld/disassemble", "metaworld/pick-place",
                   "metaworld/peg-insert-side", "metaworld/assembly", "metaworld/basketball"),
            demos=10,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=16.0,
            policies=("bc", "bc:head=gmm", "diffusion:denoiser=mlp", "act", "mint"),
            train=SELECT_BEST,
        ),
        Suite(
            name="locomotion",
            description="Gymnasium MuJoCo v5 locomotion from 1, 4, 10 and 25 episodes of imitari's shipped RL "
                        "experts: BC against DAgger and HG-DAgger (3 rounds of 2 episodes); normalised return "
                        "(random 0, expert 1), the imitation library's benchmark protocol on v5 envs",
            tasks=("mujoco/hopper", "mujoco/halfcheetah", "mujoco/walker2d"),
            demos=25,
            demo_counts=(1, 4, 10, 25),
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=1.0,
            policies=("tanh_gaussian", "tanh_gaussian:learner=dagger:rounds=3:episodes_per_round=2",
                      "tanh_gaussian:learner=hg_dagger:rounds=3:episodes_per_round=2"),
            normalised=True,
            workers=1,
        ),
        Suite(
            name="builtin",
            description="the fast numpy point-mass tasks (CI-sized by default)",
            tasks=("builtin/reach", "builtin/two_routes"),
            optional_tasks=("builtin/memory",),
            demos=100,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=0.5,
            policies=("bc", "bc:head=gmm", "diffusion"),
            train={"batch_size": 64},
            workers=1,
        ),
        Suite(
            name="pusht",
            description="gym-pusht Push-T (5-D state) from 100 demos of imitari's planner (docs/pusht.md); "
                        "score = mean best clip(coverage / 0.95)",
            tasks=("pusht",),
            optional_tasks=("pusht/keypoints",),
            demos=100,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=30.0,
            policies=("bc", "bc:head=gmm", "diffusion:denoiser=mlp", "diffusion"),
            train=SELECT_BEST,
        ),
        Suite(
            name="maze",
            description="gymnasium-robotics PointMaze medium and large from 100 demos of the shortest-route "
                        "planner, which draws among equally short routes (docs/maze.md)",
            tasks=("pointmaze/medium", "pointmaze/large"),
            demos=100,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=8.0,
            policies=("bc", "bc:head=gmm", "diffusion:denoiser=mlp"),
            train=SELECT_BEST,
        ),
        Suite(
            name="gridmaze",
            description="grid mazes from 100 BFS demos on K = 1, 5, 20 or 100 layouts, evaluated on unseen layouts "
                        "(Procedure Cloning's claim; docs/gridmaze.md)",
            tasks=("builtin/gridmaze-k1", "builtin/gridmaze-k5", "builtin/gridmaze-k20", "builtin/gridmaze-k100"),
            demos=100,
            eval_episodes=50,
            eval_seed_start=1000,
            budget_cpu_minutes=0.5,
            policies=("procedure_cloning", "procedure_cloning:use_procedure=false", "bc",
                      "bc:obs_horizon=1:action_horizon=1:exec_horizon=1"),
            train={"batch_size": 32, "lr_schedule": "constant"},
            workers=1,
        ),
    )
}
"""Every suite by name."""


def get_suite(name: str) -> Suite:
    """The suite called `name`; ConfigError naming the closest one if there is none."""
    if name not in SUITES:
        raise ConfigError(f"unknown suite '{name}'{closest(name, SUITES)}; suites: {', '.join(sorted(SUITES))}")
    return SUITES[name]


def select_tasks(suite: Suite, wanted: list[str] | None) -> list[str]:
    """The suite's tasks, or the subset `wanted` named in full or by the part after '/'."""
    tasks = suite.registered_tasks()
    if not wanted:
        return tasks
    chosen = []
    for name in wanted:
        match = [t for t in tasks if name in (t, t.rsplit("/", 1)[-1])]
        if not match:
            short = [t.rsplit("/", 1)[-1] for t in tasks]
            raise ConfigError(f"suite {suite.name} has no task '{name}'{closest(name, short)}; tasks: {', '.join(tasks)}")
        chosen += [t for t in match if t not in chosen]
    return chosen
