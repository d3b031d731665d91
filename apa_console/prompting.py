"""TALLRec's text: the recommendation instruction and the Alpaca prompt wrapped around it."""

from __future__ import annotations

from collections.abc import Iterable

from apa_console.samples import HistoryEntry, Sample


def instruction_for(domain: str) -> str:
    """TALLRec's instruction, which names the domain ("movie", "book", "game", …)."""
    return (
        "Given the user's preference and unpreference, identify whether the user will like the "
        f'target {domain} by answering "Yes." or "No.".'
    )


MOVIE_INSTRUCTION = instruction_for("movie")
BOOK_INSTRUCTION = instruction_for("book")
INSTRUCTIONS = {"movie": MOVIE_INSTRUCTION, "book": BOOK_INSTRUCTION}

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)


def answer_text(label: int) -> str:
    return "Yes." if label else "No."


def build_input(history: Iterable[HistoryEntry], target_title: str, domain: str = "movie") -> str:
    """TALLRec's input: quoted liked titles, quoted disliked titles, then the question."""
    history = list(history)
    liked = ", ".join(f'"{entry.title}"' for entry in history if entry.liked)
    disliked = ", ".join(f'"{entry.title}"' for entry in history if not entry.liked)
    return (
        f"User Preference: {liked}\n"
        f"User Unpreference: {disliked}\n"
        f'Whether the user will like the target {domain} "{target_title}"?'
    )


def build_prompt(instruction: str, input_text: str) -> str:
    """The Alpaca wrapper TALLRec trains and evaluates with; the answer follows it."""
    return (
        f"{ALPACA_PREAMBLE}\n\n"
        f"### Instruction:\n{instruction}\n\n"
        f"### Input:\n{input_text}\n\n"
        "### Response:\n"
    )


def sample_prompt(sample: Sample) -> str:
    return build_prompt(sample.instruction, sample.input)
