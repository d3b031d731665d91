"""benchmarks.learning_curve on the tiny model and the generated set: one row per recipe and
shard size with paired intervals, smaller shards are subsets of larger ones' data, a rerun
resumes from its JSON, and bad recipes fail with one line."""

from __future__ import annotations

import json

import pytest
from benchmark_process import run_benchmark

from benchmarks.learning_curve import recipe


@pytest.mark.slow
def test_rows_per_recipe_and_size_with_intervals_and_resume(tiny_model_dir, tmp_path):
    out, picture = tmp_path / "curve.json", tmp_path / "curve.png"
    args = ["--model", str(tiny_model_dir), "--data", "demo", "--demo-users", "6",
            "--sizes", "4,8", "--recipes", "v4,tallrec+lora_layers=1+epochs=1",
            "--test", "12", "--json", str(out), "--plot", str(picture)]
    first = run_benchmark("learning_curve", *args)
    assert first.returncode == 0, first.stderr
    report = json.loads(out.read_text())
    rows = {(row["recipe"], row["size"]): row for row in report["rows"]}
    assert set(rows) == {(name, size) for name in ("v4", "tallrec+lora_layers=1+epochs=1")
                         for size in (4, 8)}
    for (name, size), row in rows.items():
        epochs = 1 if "epochs=1" in name else 2
        assert row["sample_steps"] == size * epochs and len(row["scores"]) == 12
        assert 0 <= row["auc"] <= 1 and row["train_s"] > 0
        if name == "v4":  # the reference recipe
            assert "vs_reference" not in row
        else:
            assert row["vs_reference"] == pytest.approx(row["auc"] - rows["v4", size]["auc"])
            low, high = row["vs_reference_interval"]
            assert low <= high
    assert len(report["labels"]) == 12 and report["reference"] == "v4"
    assert report["recipes"]["tallrec+lora_layers=1+epochs=1"]["settings"]["lora_layers"] == 1
    assert report["recipes"]["v4"]["answer_style"] == "leading_space"
    assert picture.stat().st_size > 0
    again = run_benchmark("learning_curve", *args)
    assert again.returncode == 0, again.stderr
    assert "untouched model" not in again.stdout  # every row came from the JSON: no model
    assert json.loads(out.read_text())["rows"] == report["rows"]


@pytest.mark.parametrize("name, message", [
    ("sisa", "unknown recipe 'sisa'"),
    ("tallrec+lr", "cannot set 'lr'"),
    ("tallrec+lr=-1", "lr must be"),
])
def test_bad_recipes_are_refused_in_one_line(name, message):
    with pytest.raises(Exception, match="."):
        recipe(name)
    result = run_benchmark("learning_curve", "--recipes", name)
    assert result.returncode == 2
    assert message in result.stderr
