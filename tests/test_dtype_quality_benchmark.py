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
                      "--test", "24", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert (report["train"], report["test"]) == (8, 24)
    fp32, bf16 = report["dtypes"]["float32"], report["dtypes"]["bfloat16"]
    assert fp32["sha256"] != bf16["sha256"]  # the dtype reaches the trained weights
    for row in (fp32, bf16):
        assert 0 <= row["auc"] <= 1 and row["train_s"] > 0 and row["score_s"] > 0
    assert math.isclose(report["auc_bf16_minus_fp32"], bf16["auc"] - fp32["auc"])
    assert -1 <= report["same_adapter_p_yes_correlation"] <= 1
    low, high = report["auc_delta_interval_95"]
    assert low <= high


@pytest.mark.parametrize("args, message", [
    (["--train", "0"], "must be at least 1"),
    (["--lr", "0"], "--lr above 0"),
])
def test_dtype_quality_rejects_bad_settings(args, message):
    result = _quality(*args)
    assert result.returncode == 2 and message in result.stderr


def test_dtype_quality_reports_missing_data_in_one_line(tmp_path):
    result = _quality("--data", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
