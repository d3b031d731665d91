"""benchmarks.engine_speed on the tiny model: every step is accounted for (the training run's
warm-up step left out), the fractions follow from the raw step log, a shared prompt prefix
is counted once (and in full as model FLOPs), and bad input fails with one line."""

from __future__ import annotations

import json
import math
import statistics
import warnings

import pytest
from benchmark_process import run_benchmark

from apa_console.engine.backbone import Backbone
from apa_console.engine.training import TrainSettings, _lora_config
from benchmarks import engine_speed, flops


def _engine(*args: str):
    return run_benchmark("engine_speed", *args)


@pytest.mark.slow
def test_engine_benchmark_accounts_for_every_step(tiny_model_dir, tmp_path):
    out = tmp_path / "engine.json"
    result = _engine("--model", str(tiny_model_dir), "--score-samples", "10",
                     "--score-batches", "4", "--train-samples", "12", "--train-batches", "4",
                     "--repeats", "2", "--probe-seconds", "0.02", "--json", str(out),
                     "--dtypes", "float32,bfloat16")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())

    backbone = Backbone.load(str(tiny_model_dir), device="cpu")
    score_prompts, _ = engine_speed.realistic_prompts(10, seed=1)
    score_gflop = sum(flops.forward_gflop(backbone, len(ids))
                      for ids in backbone.encode(score_prompts))
    from peft import get_peft_model

    with warnings.catch_warnings():  # peft asks transformers a deprecated question
        warnings.filterwarnings("ignore", category=FutureWarning)
        lora = get_peft_model(backbone.shared_weight_copy(), _lora_config(TrainSettings()))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert trainable > 0
    train_prompts, _ = engine_speed.realistic_prompts(12, seed=2)
    train_gflop = [flops.training_step_gflop(backbone, [len(ids)], 0, trainable)
                   for ids in backbone.encode(train_prompts)]
    # Attention's backward is twice its forward, a frozen Linear layer's once.
    linear, attention, _ = flops.batch_gflop_parts(backbone, [100], 0)
    assert math.isclose(flops.training_step_gflop(backbone, [100], 0, 0),
                        2 * linear + 3 * attention)

    assert set(report["dtypes"]) == {"float32", "bfloat16"}
    assert set(report["bfloat16_over_float32"]) == {"score_samples_per_s",
                                                    "train_samples_per_s", "peak_gflops"}
    for per_dtype in report["dtypes"].values():  # each dtype against its own peak
        _check_the_step_log(per_dtype, score_gflop, train_gflop)
    _check_the_runs_take_turns(report)


def _check_the_runs_take_turns(report: dict):
    """Ratios divide runs that ran back to back; the dtypes swap places every repeat."""
    fp32, bf16 = report["dtypes"]["float32"], report["dtypes"]["bfloat16"]
    pairs = report["bfloat16_over_float32_pairs"]
    for kind in ("scoring", "training", "training_full_rows"):
        mine, theirs = bf16[kind]["4"], fp32[kind]["4"]
        assert pairs[kind]["4"] == pytest.approx(
            [b / f for b, f in zip(mine["samples_per_s"], theirs["samples_per_s"])])
        first, second = ([run["started_s"] for run in by["runs"]] for by in (theirs, mine))
        assert first[0] < second[0] < second[1] < first[1]
    assert report["bfloat16_over_float32"]["train_samples_per_s"] == pytest.approx(
        statistics.median(pairs["training"]["4"]))
    assert report["bfloat16_over_float32"]["score_samples_per_s"] == pytest.approx(
        statistics.median(pairs["scoring"]["4"]))


def _check_the_step_log(per_dtype: dict, score_gflop: float, train_gflop: list[float]):
    assert per_dtype["peak_gflops"] >= per_dtype["first_peak_gflops"] > 0
    # the headline figures are the medians of the default workloads' runs
    assert math.isclose(per_dtype["train_samples_per_s"],
                        statistics.median(per_dtype["training"]["4"]["samples_per_s"]))
    assert math.isclose(per_dtype["score_samples_per_s"],
                        statistics.median(per_dtype["scoring"]["4"]["samples_per_s"]))
    scoring, training = per_dtype["scoring"]["4"], per_dtype["training_full_rows"]["4"]
    shared = per_dtype["training"]["4"]
    for summary in (scoring, training, shared):
        assert len(summary["runs"]) == 2
        for run, fraction, model_fraction in zip(summary["runs"],
                                                 summary["fraction_of_adjacent_peak"],
                                                 summary["model_flops_fraction"]):
            steps, probes = run["steps_gflop_seconds_samples"], run["probes_gflops"]
            assert len(probes) == len(steps) + 1  # one probe before and after every step
            adjacent = [(a + b) / 2 for a, b in zip(probes, probes[1:])]
            spent = sum(seconds * peak for (_, seconds, _), peak in zip(steps, adjacent))
            assert math.isclose(fraction, sum(gflop for gflop, _, _ in steps) / spent)
            assert fraction > 0
            assert math.isclose(model_fraction, sum(run["steps_model_gflop"]) / spent)
    for summary in (scoring, training):  # nothing skipped: model FLOPs are the work run
        for run in summary["runs"]:
            assert run["steps_model_gflop"] == [g for g, _, _ in run["steps_gflop_seconds_samples"]]
    for run in scoring["runs"]:  # every batch counted, each prompt by its own length
        steps = run["steps_gflop_seconds_samples"]
        assert [samples for _, _, samples in steps] == [4, 4, 2]
        assert math.isclose(sum(gflop for gflop, _, _ in steps), score_gflop)
    for run in training["runs"]:  # 3 steps of 4, the first one left out
        steps = run["steps_gflop_seconds_samples"]
        assert [samples for _, _, samples in steps] == [4, 4]
        for gflop, _, _ in steps:  # four of the prompts
            assert 4 * min(train_gflop) <= gflop <= 4 * max(train_gflop)
        assert sum(gflop for gflop, _, _ in steps) < sum(train_gflop)
    # The same batches with their common prompt prefix run once: less work in every step.
    for run, full_run in zip(shared["runs"], training["runs"]):
        steps = run["steps_gflop_seconds_samples"]
        full_steps = full_run["steps_gflop_seconds_samples"]
        assert [samples for _, _, samples in steps] == [4, 4]
        for (gflop, _, _), (full_gflop, _, _) in zip(steps, full_steps):
            assert 0.5 * full_gflop < gflop < 0.9 * full_gflop
        # Model FLOPs count the work of the same batches as full rows.
        assert all(math.isclose(model, full) for model, (full, _, _) in
                   zip(run["steps_model_gflop"], full_steps))


@pytest.mark.parametrize("args, message", [
    (["--train-samples", "8", "--train-batches", "8"], "must exceed the largest training batch"),
    (["--score-batches", "8,x"], "not a comma-separated list"),
    (["--score-batches", "0"], "at least 1"),
    (["--repeats", "0"], "must be at least 1"),
])
def test_engine_benchmark_rejects_bad_settings(args, message):
    result = _engine(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_engine_benchmark_reports_a_missing_model_in_one_line(tmp_path):
    result = _engine("--model", str(tmp_path / "absent"), "--probe-seconds", "0.01")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
