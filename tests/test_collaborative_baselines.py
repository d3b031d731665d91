"""The RecEraser (UBP) and GraphEraser (BEKM) baselines partition on collaborative
embeddings of the training interactions, as their papers define them; UBP balances samples."""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import make_samples, make_store

from apa_console.apa.collaborative import REPRESENTATION, interaction_vectors, partition_vectors
from apa_console.apa.shards import run_partition
from apa_console.engine.backbone import Backbone
from apa_console.store import records
from apa_console.store.document import get_meta


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def _train(samples):
    return [s for s in samples if s.split == "train"]


def test_users_of_one_taste_get_close_vectors_and_the_other_taste_far_ones():
    # make_samples: even users like the even items, odd users the odd ones
    users, items = interaction_vectors(_train(make_samples(n_users=6, per_user=12)))

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    same = [cosine(users["user0"], users["user2"]), cosine(users["user1"], users["user3"])]
    other = [cosine(users["user0"], users["user1"]), cosine(users["user2"], users["user5"])]
    assert min(same) > 0.5 and max(other) < 0 and len(items) > 1


def test_collaborative_vectors_are_deterministic_and_shaped_per_method():
    samples = _train(make_samples(n_users=6, per_user=8))
    first = partition_vectors("bekm", samples, seed=3)
    assert np.array_equal(first, partition_vectors("bekm", samples, seed=3))
    width = first.shape[1] // 2
    user_rows = partition_vectors("user", samples)
    assert user_rows.shape == (len(samples), width)
    rows_of_user0 = [i for i, s in enumerate(samples) if s.user_id == "user0"]
    assert np.allclose(user_rows[rows_of_user0], user_rows[rows_of_user0[0]])


def test_user_partition_keeps_tastes_together_balances_samples_and_records_its_basis(
        tmp_path, backbone):
    store = make_store(tmp_path / "store", n_users=6, per_user=12)
    run_partition(store, backbone, "user", 2, seed=0)
    db = store.snapshot()
    shards = records.shard_rows(db)
    assert sorted(len(row["users"]) for row in shards) == [3, 3]
    parity = [{int(user[4:]) % 2 for user in row["users"]} for row in shards]
    assert sorted(map(sorted, parity)) == [[0], [1]]  # one taste per shard
    sizes = [row["size"] for row in shards]
    assert max(sizes) - min(sizes) <= 8  # within one user's training samples
    assert get_meta(db)["partition"]["representation"] == REPRESENTATION


def test_bekm_partitions_interactions_and_apa_keeps_hidden_states(tmp_path, backbone):
    store = make_store(tmp_path / "bekm", n_users=6, per_user=12)
    run_partition(store, backbone, "bekm", 3, seed=0)
    assert get_meta(store.snapshot())["partition"]["representation"] == REPRESENTATION
    assert len(records.shard_rows(store.snapshot())) == 3
    other = make_store(tmp_path / "apa", n_users=6, per_user=12)
    run_partition(other, backbone, "apa", 3, seed=0)
    assert get_meta(other.snapshot())["partition"]["representation"] == "hidden-state"
