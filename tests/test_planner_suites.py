"""The pusht and maze suites are defined on registered tasks, and their table shows the score."""

from __future__ import annotations

import pytest

from imitari import bench_table
from imitari.envs.registry import get_task
from imitari.eval.metrics import EpisodeResult, summarize
from imitari.suites import get_suite


@pytest.mark.parametrize(("name", "tasks"), [
    ("pusht", ["pusht", "pusht/keypoints"]), ("maze", ["pointmaze/medium", "pointmaze/large"])])
def test_suite_is_defined_on_tasks_with_experts(name: str, tasks: list[str]) -> None:
    suite = get_suite(name)
    assert suite.registered_tasks() == tasks
    assert all(get_task(t).make_expert is not None for t in tasks)
    assert suite.demos >= 100 and suite.eval_episodes == 50
    assert not set(suite.demo_seeds()) & (set(suite.eval_seeds("test")) | set(suite.eval_seeds("validation")))


def test_markdown_has_a_score_column_only_when_a_row_has_a_score() -> None:
    results = [EpisodeResult(seed=1000 + i, success=i == 0, return_=0.0, length=5, info={"score": s})
               for i, s in enumerate([1.0, 0.6])]
    row = bench_table.summary_row("pusht", bench_table.EXPERT, summarize(results), seeds=[1000, 1001])
    rows = [{k: str(v) for k, v in {**dict.fromkeys(bench_table.FIELDS, ""), **row}.items()}]
    table = bench_table.markdown(rows)
    assert "| score |" in table and "| 0.800 |" in table
    rows[0]["score"] = ""
    assert "score" not in bench_table.markdown(rows)


def test_many_behaviour_labels_are_counted_not_listed() -> None:
    from imitari.eval.metrics import format_summary

    results = [EpisodeResult(seed=i, success=True, return_=0.0, length=5, info={"route": f"cells {i}"})
               for i in range(10)]
    assert "routes  10 distinct  (behaviour entropy 1.00)" in format_summary(summarize(results))
