"""benchmarks.dtype_quality on the tiny model and the demo data: both dtypes train and score,
the comparison is reported, and bad input fails with one line."""

from __future__ import annotations

import json
import math

import pytest
from benchmark_process import run_benchmark


def _quality(*args: str):
    return run_benchmark("dtype_quality", *args)


@pytest.mark.slow
def test_dtype_quality_compares_both_dtypes(tiny_model_dir, tmp_path):
    out = tmp_path / "quality.json"
    result = _quality("--data", "demo", "--model", str(tiny_model_dir), "--train", "8",
                      "--test", "24", "--seeds", "3,5", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert (report["train"], report["test"], report["seeds"]) == (8, 24, [3, 5])
    fp32, bf16 = report["runs"]["float32"], report["runs"]["bfloat16"]
    assert [row["seed"] for row in fp32] == [row["seed"] for row in bf16] == [3, 5]
    hashes = {row["sha256"] for row in fp32 + bf16}
    assert len(hashes) == 4  # the dtype and the seed both reach the trained weights
    for row in fp32 + bf16:
        assert 0 <= row["auc"] <= 1 and row["train_s"] > 0 and row["score_s"] > 0
    differences = [b["auc"] - f["auc"] for f, b in zip(fp32, bf16)]
    assert [row["auc_bf16_minus_fp32"] for row in report["per_seed"]] == differences
    assert math.isclose(report["auc_bf16_minus_fp32"], sum(differences) / 2)
    for name, rows in (("float32", fp32), ("bfloat16", bf16)):
        (noise,) = report["seed_to_seed"][name]
        assert noise["seeds"] == [3, 5]
        assert noise["auc_delta"] == rows[1]["auc"] - rows[0]["auc"]
        assert report["dtypes"][name]["auc_per_seed"] == [row["auc"] for row in rows]
    assert -1 <= report["same_adapter_p_yes_correlation"] <= 1
    for row in report["per_seed"]:
        low, high = row["interval_95"]
        assert low <= high


@pytest.mark.parametrize("args, message", [
    (["--train", "0"], "must be at least 1"),
    (["--lr", "0"], "--lr above 0"),
    (["--seeds", "1,1"], "seeds must be distinct"),
    (["--seeds", "a"], "not a comma-separated list of seeds"),
])
def test_dtype_quality_rejects_bad_settings(args, message):
    result = _quality(*args)
    assert result.returncode == 2 and message in result.stderr


def test_dtype_quality_reports_missing_data_in_one_line(tmp_path):
    result = _quality("--data", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
