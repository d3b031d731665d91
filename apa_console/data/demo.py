"""A small generated movie dataset with a learnable signal, for demos and tests.

Every title carries words of its genre and the genre itself ("Haunted Ghost Manor (horror,
1994)"); every user likes two of the six genres; a rating is "liked" when the item's genre is
one the user likes, flipped with a little noise. A model that learns "the target's genre
appears among the User Preference titles" therefore learns the labels. Naming the genre
makes that a matter of spotting a repeated word, which a LoRA on a 135M model picks up far
sooner than which invented titles belong together.

With the defaults (24 users, 18 ratings each, history 10) it yields 192 sequences: per user
the first four go to train, the next two to valid, the last two to test (96/48/48), so every
user has samples to forget in every split. Same arguments, same samples: the generator uses
only `random.Random(seed).random()`, whose output Python guarantees across versions.
"""

from __future__ import annotations

import random

from apa_console.data.ingest import ParsedDataset, sample_id
from apa_console.errors import UsageError
from apa_console.prompting import MOVIE_INSTRUCTION, answer_text, build_input
from apa_console.samples import HistoryEntry, Sample

DEFAULT_USERS = 24
DEFAULT_SEED = 0
HISTORY_LENGTH = 10
SPLIT_PLAN = ("train",) * 4 + ("valid",) * 2 + ("test",) * 2  # per user, after the history
RATINGS_PER_USER = HISTORY_LENGTH + len(SPLIT_PLAN)
LIKED_GENRES_PER_USER = 2
FROM_LIKED_GENRES = 0.5  # share of a user's items drawn from genres they like
LABEL_NOISE = 0.1

# genre → (title openings, title endings); both halves speak for the genre.
GENRE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "horror": (
        ("Haunted", "Midnight", "Cursed", "Bloody"),
        ("Ghost Manor", "Graveyard", "Nightmare"),
    ),
    "comedy": (("Crazy", "Goofy", "Wacky", "Silly"), ("Party", "Vacation", "Roommates")),
    "romance": (("Endless", "Summer", "Paris", "Secret"), ("Love Letters", "Kiss", "Wedding")),
    "sci-fi": (("Galactic", "Robot", "Alien", "Quantum"), ("Starship", "Planet", "Invasion")),
    "western": (("Outlaw", "Dusty", "Lone", "Rattlesnake"), ("Sheriff", "Canyon", "Gunfight")),
    "family": (("Little", "Magic", "Happy", "Talking"), ("Puppy", "Dragon Friends", "Toy Box")),
}
GENRES = tuple(GENRE_WORDS)


def build_catalog() -> list[dict[str, str]]:
    """72 items: every opening × ending of every genre, with its genre and a fixed pseudo-year."""
    catalog = []
    for genre in GENRES:
        openings, endings = GENRE_WORDS[genre]
        for opening in openings:
            for ending in endings:
                number = len(catalog) + 1
                year = 1965 + (number * 7) % 33
                title = f"{opening} {ending} ({genre}, {year})"
                catalog.append({"id": f"i{number:03d}", "title": title, "genre": genre})
    return catalog


def _pick(generator: random.Random, options: list):
    return options[int(generator.random() * len(options))]


def _user_ratings(generator: random.Random, catalog: list[dict[str, str]]) -> tuple[list, list]:
    """The user's liked genres and RATINGS_PER_USER (item, liked) pairs, no item twice."""
    liked_genres: list[str] = []
    while len(liked_genres) < LIKED_GENRES_PER_USER:
        genre = _pick(generator, list(GENRES))
        if genre not in liked_genres:
            liked_genres.append(genre)
    seen: set[str] = set()
    ratings = []
    for _ in range(RATINGS_PER_USER):
        from_liked = generator.random() < FROM_LIKED_GENRES
        pool = [
            item
            for item in catalog
            if item["id"] not in seen and (item["genre"] in liked_genres) == from_liked
        ]
        item = _pick(generator, pool)
        seen.add(item["id"])
        liked = (item["genre"] in liked_genres) != (generator.random() < LABEL_NOISE)
        ratings.append((item, liked))
    return liked_genres, ratings


MAX_USERS = 100_000  # a demo, not a load test: a typo of 2**70 would never finish


def generate_demo(users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED) -> ParsedDataset:
    if not 1 <= users <= MAX_USERS:
        raise UsageError(f"--users must be in [1, {MAX_USERS}], got {users}")
    generator = random.Random(seed)
    catalog = build_catalog()
    samples: dict[str, list[Sample]] = {"train": [], "valid": [], "test": []}
    tastes: dict[str, list[str]] = {}
    order = 0
    for index in range(users):
        user_id = f"u{index + 1:03d}"
        tastes[user_id], ratings = _user_ratings(generator, catalog)
        for position, split in enumerate(SPLIT_PLAN, start=HISTORY_LENGTH):
            history = tuple(
                HistoryEntry(item=item["id"], title=item["title"], liked=liked)
                for item, liked in ratings[position - HISTORY_LENGTH : position]
            )
            target, liked = ratings[position]
            label = int(liked)
            samples[split].append(
                Sample(
                    id=sample_id(order),
                    user_id=user_id,
                    target_item=target["id"],
                    target_title=target["title"],
                    label=label,
                    split=split,
                    instruction=MOVIE_INSTRUCTION,
                    input=build_input(history, target["title"], "movie"),
                    output=answer_text(label),
                    history=history,
                    order=order,
                )
            )
            order += 1
    return ParsedDataset(
        name="demo",
        domain="movie",
        source=f"generated (users={users}, seed={seed})",
        samples=samples,
        details={"generator": {"users": users, "seed": seed, "label_noise": LABEL_NOISE}},
    )
