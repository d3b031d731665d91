"""TALLRec's sliding windows: from interaction logs to samples.

TALLRec (preprocess_movie.py) groups ratings by user in order of first appearance, sorts
each user's ratings by time (a stable sort, so ties keep file order), turns every rating
after the first `history_length` into a sequence whose history is the ratings just before
it, and cuts the sequence list 80/10/10 in order. Every interaction-log loader (MovieLens,
the operator's own `ingest interactions`) builds its samples here, so they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apa_console.data.ingest import sample_id, split_in_order
from apa_console.prompting import answer_text, build_input
from apa_console.samples import HistoryEntry, Sample


@dataclass(frozen=True, slots=True)  # slots: a million of them stay small
class Interaction:
    user: str
    item: str
    liked: bool
    time: float  # only its order within a user matters


Window = tuple[list[Interaction], Interaction]  # (history, target)


def sliding_windows(interactions: Iterable[Interaction], history_length: int) -> list[Window]:
    """Every (previous `history_length` interactions, interaction) pair, users in order of
    first appearance, each user's in time order."""
    by_user: dict[str, list[Interaction]] = {}
    for interaction in interactions:
        by_user.setdefault(interaction.user, []).append(interaction)
    windows: list[Window] = []
    for user_interactions in by_user.values():
        ordered = sorted(user_interactions, key=lambda interaction: interaction.time)  # stable
        for index in range(history_length, len(ordered)):
            windows.append((ordered[index - history_length : index], ordered[index]))
    return windows


def window_sample(
    order: int, split: str, window: Window, titles: dict[str, str], domain: str,
    instruction: str,
) -> Sample:
    history, target = window
    entries = tuple(
        HistoryEntry(item=step.item, title=titles[step.item], liked=step.liked)
        for step in history
    )
    label = int(target.liked)
    return Sample(
        id=sample_id(order),
        user_id=target.user,
        target_item=target.item,
        target_title=titles[target.item],
        label=label,
        split=split,
        instruction=instruction,
        input=build_input(entries, titles[target.item], domain),
        output=answer_text(label),
        history=entries,
        order=order,
    )


def windowed_samples(
    windows: list[Window], titles: dict[str, str], domain: str, instruction: str
) -> dict[str, list[Sample]]:
    """The windows cut 80/10/10 in order, each made a sample numbered in that order."""
    samples: dict[str, list[Sample]] = {}
    order = 0
    for split, part in split_in_order(windows).items():
        samples[split] = []
        for window in part:
            samples[split].append(window_sample(order, split, window, titles, domain,
                                                instruction))
            order += 1
    return samples
