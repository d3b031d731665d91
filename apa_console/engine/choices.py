"""The engine's named choices (compute dtype, mixture level), in a module that imports nothing
heavy, so the command line can offer them without loading torch."""

from __future__ import annotations

from enum import Enum


class ComputeDtype(str, Enum):
    """A training setting's choice of compute dtype; `auto` is the fastest one here."""

    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


class TrainingLoss(str, Enum):
    """The loss at the answer position: over the two answer tokens, or the whole vocabulary
    (TALLRec's)."""

    ANSWER_PAIR = "answer_pair"
    FULL_VOCAB = "full_vocab"


class MixtureLevel(str, Enum):
    """Where adapters are mixed: their factors A and B (D) or their products B·A (ND)."""

    D = "D"
    ND = "ND"


LEVELS = tuple(level.value for level in MixtureLevel)


class HiddenState(str, Enum):
    """Which of the base model's final-layer states represents a sample (partition,
    neighbours, centres): the mean over its TALLRec input, or the state at the last token
    of its whole prompt (the paper's "hidden representation of x_i")."""

    MEAN = "mean"
    LAST = "last"


HIDDEN_STATES = tuple(choice.value for choice in HiddenState)


class SlowDtypeWarning(UserWarning):
    """bfloat16 asked for on a CPU that only emulates it: correct, but very slow. Here, not
    in `devices`, so front-ends can recognise it without importing torch."""
