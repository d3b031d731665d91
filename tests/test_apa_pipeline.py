"""The APA spine on the tiny model: partition → train → validation cache → aggregate → score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from store_fixtures import make_store

from apa_console.apa.adapters import train_all
from apa_console.apa.serving import (
    aggregation_defaults,
    compare,
    load_live_set,
    samples_to_score,
    score_apa,
    score_sisa,
)
from apa_console.apa.shards import run_partition, shard_summary
from apa_console.apa.tuning import tune
from apa_console.engine.backbone import Backbone
from apa_console.engine.mixture import AdapterFactors
from apa_console.errors import ConflictError
from apa_console.store import records

FAST = {"epochs": 1, "batch_size": 4}


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, backbone):
    store = make_store(tmp_path_factory.mktemp("apa") / "store")
    run_partition(store, backbone, "apa", 3, seed=0)
    train_all(store, backbone, overrides=FAST, retrain_baseline=True)
    return store


def test_partition_records_complete_balanced_shards(trained_store):
    rows = records.shard_rows(trained_store.snapshot())
    train_ids = [s.id for s in samples_to_score(trained_store, split="train")]
    assert sorted(sid for row in rows for sid in row["sample_ids"]) == sorted(train_ids)
    summary = shard_summary(trained_store)
    assert summary["balance"]["max_size"] <= summary["partition"]["cap"]
    assert all(s["adapter"] for s in summary["shards"])


def test_training_is_resumable_and_records_validation_errors(trained_store, backbone):
    assert train_all(trained_store, backbone, overrides=FAST, retrain_baseline=True) == []
    live = load_live_set(trained_store)
    n_valid = len(samples_to_score(trained_store, split="valid"))
    assert live.valid_errors.shape == (3, n_valid)
    assert ((live.valid_errors >= 0) & (live.valid_errors <= 1)).all()


def test_adapters_recorded_before_a_setting_existed_stay_up_to_date(tmp_path, backbone):
    """A record without `share_prefix` (made before the setting and engine versions existed)
    means it was trained without it: such an adapter matches the store's settings and is not
    retrained."""
    from apa_console.store.document import get_meta, update_meta

    store = make_store(tmp_path / "store")
    run_partition(store, backbone, "random", 2, seed=0)
    train_all(store, backbone, overrides={**FAST, "share_prefix": False})
    with store.transaction() as db:
        settings = get_meta(db)["train_settings"]
        del settings["share_prefix"], settings["engine_version"]
        update_meta(db, train_settings=settings)
        adapters = db.table("adapters")
        for row in adapters.all():
            old = {k: v for k, v in row["settings"].items()
                   if k not in ("share_prefix", "engine_version")}
            adapters.update({"settings": old}, doc_ids=[row.doc_id])
    assert train_all(store, backbone) == []


def test_repartition_needs_force(trained_store, backbone):
    with pytest.raises(ConflictError, match="--force"):
        run_partition(trained_store, backbone, "random", 2)


def _explicit_peft_model(backbone, factors, weights, level):
    """One sample's merged adapter as a real peft LoRA: rank r for D (Ā, B̄), rank K·r for
    ND (A stacked with ω, B side by side, so B'A' = Σ ω_k B_k A_k)."""
    rank = next(iter(factors[0].a.values())).shape[0]
    new_rank = rank if level == "D" else rank * len(factors)
    config = LoraConfig(r=new_rank, lora_alpha=factors[0].scaling * new_rank,
                        target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    model = get_peft_model(backbone.shared_weight_copy(), config)
    for name, module in model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        key = name.removeprefix("base_model.model.")
        if level == "D":
            a = sum(w * f.a[key] for w, f in zip(weights, factors))
            b = sum(w * f.b[key] for w, f in zip(weights, factors))
        else:
            a = torch.cat([w * f.a[key] for w, f in zip(weights, factors)], dim=0)
            b = torch.cat([f.b[key] for f in factors], dim=1)
        module.lora_A["default"].weight.data = a.to(module.lora_A["default"].weight.dtype)
        module.lora_B["default"].weight.data = b.to(module.lora_B["default"].weight.dtype)
    return model.eval()


@pytest.mark.parametrize("level", ["D", "ND"])
def test_batched_mixture_equals_explicit_peft_merge_per_sample(trained_store, backbone, level):
    samples = samples_to_score(trained_store, split="test")
    report = score_apa(trained_store, backbone, samples, level=level, tau=50.0, neighbours=2,
                       batch_size=5)
    live = load_live_set(trained_store)
    assert not np.allclose(report.weights, report.weights[0])  # rows really differ
    for i, sample in enumerate(samples):
        model = _explicit_peft_model(backbone, live.factors, report.weights[i].tolist(), level)
        expected = backbone.score(backbone.prompts_for([sample]), model=model)[0]
        assert abs(report.p_yes[i] - expected) < 1e-4


def test_single_adapter_mixture_equals_peft_from_pretrained(trained_store, backbone):
    from peft import PeftModel

    row = records.live_adapters(trained_store.snapshot())[0]
    samples = samples_to_score(trained_store, split="valid")
    peft_model = PeftModel.from_pretrained(
        backbone.shared_weight_copy(), str(trained_store.path_of(row["path"]))
    ).eval()
    expected = backbone.score(backbone.prompts_for(samples), model=peft_model)
    labels = np.array([s.label for s in samples])
    errors = trained_store.read_array(row["valid_errors"])
    assert np.allclose(np.abs(labels - expected), errors, atol=1e-5)


def test_sisa_averages_each_adapters_peft_output(trained_store, backbone):
    from peft import PeftModel

    samples = samples_to_score(trained_store, split="test")[:4]
    report = score_sisa(trained_store, backbone, samples, live=load_live_set(trained_store))
    prompts = backbone.prompts_for(samples)
    singles = [
        backbone.score(prompts, model=PeftModel.from_pretrained(
            backbone.shared_weight_copy(), str(trained_store.path_of(row["path"]))).eval())
        for row in records.live_adapters(trained_store.snapshot())
    ]
    assert np.allclose(report.p_yes, np.mean(singles, axis=0), atol=1e-5)


def test_output_averaging_is_called_sisa_only_over_a_random_partition(
        trained_store, backbone, tmp_path):
    import shutil

    from apa_console.store.document import Store, get_meta, update_meta

    samples = samples_to_score(trained_store, split="test")[:2]
    assert score_sisa(trained_store, backbone, samples).method == "averaging (apa)"
    copy = Store.open(shutil.copytree(trained_store.root, tmp_path / "random"))
    with copy.transaction() as db:
        update_meta(db, partition={**get_meta(db)["partition"], "method": "random"})
    assert score_sisa(copy, backbone, samples).method == "SISA"


def test_uniform_weights_at_decomposition_level_equal_averaged_factors(trained_store, backbone):
    samples = samples_to_score(trained_store, split="test")[:3]
    average = score_apa(trained_store, backbone, samples, strategy="average", level="D")
    assert np.allclose(average.weights, 1 / 3)
    factors = [AdapterFactors.load(trained_store.path_of(r["path"]))
               for r in records.live_adapters(trained_store.snapshot())]
    model = _explicit_peft_model(backbone, factors, [1 / 3] * 3, "D")
    expected = backbone.score(backbone.prompts_for(samples), model=model)
    assert np.allclose(average.p_yes, expected, atol=1e-4)


def test_compare_reports_every_method_and_records_the_evaluation(trained_store, backbone):
    result = compare(trained_store, backbone)
    methods = [row["method"] for row in result["rows"]]
    # output averaging over an apa partition is not SISA, and is not called so
    assert methods == ["Retraining", "averaging (apa)", "APA(D)", "APA(ND)"]
    retraining = result["rows"][0]
    assert retraining["delta_vs_retraining"] == pytest.approx(0.0)
    assert all(row["samples_per_s"] > 0 for row in result["rows"])
    # its APA(D) score is a point of the served recommender's AUC history
    point = records.score_history(trained_store.snapshot())[-1]
    apa_d = next(row for row in result["rows"] if row["method"] == "APA(D)")
    assert (point["method"], point["split"]) == ("APA(D)", "test")
    assert point["auc"] == pytest.approx(apa_d["auc"])


def test_tune_by_the_proxy_stores_the_best_grid_point(trained_store):
    result = tune(trained_store, taus=(1.0, 100.0), neighbour_grid=(1, 3))
    assert len(result["grid"]) == 4
    best = result["best"]
    assert best["scored_by"] == "proxy"
    assert best["auc"] == max(g["proxy_auc"] for g in result["grid"])
    assert aggregation_defaults(trained_store) == (best["tau"], best["neighbours"])
    # τ = 0 (the plain average) is one grid point, whatever the neighbour grid
    uniform = tune(trained_store, taus=(0.0, 1.0), neighbour_grid=(1, 3), save=False)
    assert [(g["tau"], g["neighbours"]) for g in uniform["grid"]] == [(0.0, 1), (1.0, 1),
                                                                       (1.0, 3)]


def test_tune_scores_its_shortlist_with_the_served_merge(trained_store, backbone):
    from apa_console.apa.embeddings import validation_pool
    from apa_console.apa.metrics import auc
    from apa_console.apa.weights import neighbour_errors, softmax_rows
    from apa_console.engine.mixture import mixture_model, set_row_weights

    result = tune(trained_store, backbone, taus=(1.0, 100.0), neighbour_grid=(1, 3),
                  served_points=2, save=False)
    shortlist = [g for g in result["grid"] if "served_auc" in g]
    assert len(shortlist) == 2
    assert min(g["proxy_auc"] for g in shortlist) >= max(
        g["proxy_auc"] for g in result["grid"] if "served_auc" not in g)
    best = result["best"]
    assert best["scored_by"] == "served merge (D)"
    assert best["auc"] == max(g["served_auc"] for g in shortlist)
    # the served AUC is what scoring each validation sample alone with its leave-one-user-out
    # weights and the level-D merge gives (the batched run keeps rows and weights together)
    live = load_live_set(trained_store)
    users = np.array([s.user_id for s in validation_pool(trained_store)])
    weights = softmax_rows(-best["tau"] * neighbour_errors(
        live.valid_embeddings, live.valid_embeddings, live.valid_errors, best["neighbours"],
        exclude_groups=users))
    prompts = backbone.prompts_for(validation_pool(trained_store))
    alone = []
    with mixture_model(backbone.model, live.factors, "D") as layers:
        for prompt, row in zip(prompts, weights):
            set_row_weights(layers, row[None, :])
            alone.append(float(backbone.score([prompt])[0]))
    assert auc(live.valid_labels, np.array(alone)) == pytest.approx(best["auc"], abs=1e-9)


def test_user_show_and_users_report_the_shards_holding_the_data(trained_store):
    import json

    from typer.testing import CliRunner

    from apa_console.cli.app import app

    runner = CliRunner()
    shown = runner.invoke(app, ["user", "show", "user0", "--json", "--store",
                                str(trained_store.root)])
    detail = json.loads(shown.stdout)["data"]
    owner = records.sample_shards(trained_store.snapshot())
    for split, rows in detail["splits"].items():
        for row in rows:
            assert row["shard"] == (owner[row["id"]] if split == "train" else None)
    assert detail["shards"] == sorted({owner[r["id"]] for r in detail["splits"]["train"]})
    listed = json.loads(runner.invoke(app, ["users", "--json", "--store",
                                            str(trained_store.root)]).stdout)["data"]
    assert next(u for u in listed if u["id"] == "user0")["shards"] == detail["shards"]


def test_train_command_records_the_batching_choices_and_refuses_bad_sizes(
        tmp_path, backbone, tiny_model_dir):
    from typer.testing import CliRunner

    from apa_console.cli.app import app
    from apa_console.store.document import get_meta

    store = make_store(tmp_path / "store")
    run_partition(store, backbone, "random", 2, seed=0)
    common = ["--store", str(store.root), "--model", str(tiny_model_dir), "--json"]
    before = store.file.read_bytes()
    refused = CliRunner().invoke(app, ["train", "--batch-size", "0", *common])
    assert refused.exit_code == 2 and "--batch-size" in refused.output
    assert store.file.read_bytes() == before
    done = CliRunner().invoke(app, ["train", "--epochs", "1", "--batch-size", "4",
                                    "--no-group-by-length", "--no-share-prefix", *common])
    assert done.exit_code == 0, done.output
    for setting in ("group_by_length", "share_prefix"):
        assert get_meta(store.snapshot())["train_settings"][setting] is False
        live = records.live_adapters(store.snapshot())
        assert all(row["settings"][setting] is False for row in live)
