"""A small store of synthetic TALLRec-style samples, written straight through the store API.

Users like the titles of one "taste" group; the label says whether the target belongs to it,
so an adapter can learn something even on the tiny model.
"""

from __future__ import annotations

import random
from pathlib import Path

from tiny_model import TITLES

from apa_console.prompting import MOVIE_INSTRUCTION, answer_text, build_input
from apa_console.samples import HistoryEntry, Sample
from apa_console.store.document import Store, update_meta


def make_samples(n_users: int = 6, per_user: int = 8, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    items = [(str(i + 1), title) for i, title in enumerate(TITLES)]
    samples: list[Sample] = []
    for u in range(n_users):
        taste = {item for item, _ in items[u % 2::2]}
        for _ in range(per_user):
            history = tuple(
                HistoryEntry(item=item, title=title, liked=item in taste)
                for item, title in rng.sample(items, 4)
            )
            target_item, target_title = rng.choice(items)
            label = int(target_item in taste)
            samples.append(Sample(
                id=f"s{len(samples):06d}", user_id=f"user{u}", target_item=target_item,
                target_title=target_title, label=label, split="train",
                instruction=MOVIE_INSTRUCTION, input=build_input(history, target_title),
                output=answer_text(label), history=history, order=len(samples),
            ))
    # interleave splits so every user has samples in each split
    split_cycle = ("train", "train", "train", "train", "valid", "test")
    return [
        Sample(**{**s.__dict__, "split": split_cycle[i % len(split_cycle)]})
        for i, s in enumerate(samples)
    ]


def make_store(path: Path, **kwargs) -> Store:
    store = Store.create(path)
    samples = make_samples(**kwargs)
    with store.transaction() as db:
        db.table("samples").insert_multiple(s.to_record() for s in samples)
        users: dict[str, dict] = {}
        for s in samples:
            counts = users.setdefault(s.user_id, {"train": 0, "valid": 0, "test": 0})
            counts[s.split] += 1
        db.table("users").insert_multiple(
            {"id": user, "counts": counts} for user, counts in users.items()
        )
        update_meta(db, dataset={"name": "synthetic", "domain": "movie"})
    return store


FAST_TRAINING = {"epochs": 1, "batch_size": 4}


def trained_store(path: Path, backbone, method: str = "apa", *, baseline: bool = False,
                  **shape) -> Store:
    """A synthetic store partitioned into 3 shards and trained on `backbone` (the tiny model
    in tests): what most exactness and CLI tests start from."""
    from apa_console.apa.adapters import train_all
    from apa_console.apa.shards import run_partition
    from apa_console.store.model_record import record_model

    store = make_store(path, **shape)
    record_model(store, backbone.info)
    run_partition(store, backbone, method, 3, seed=0)
    train_all(store, backbone, overrides=FAST_TRAINING, retrain_baseline=baseline)
    return store
