"""Which tokens are the answers "Yes" and "No": the ones the model trains and scores on.

TALLRec tokenizes prompt + "Yes." as one text, so the answer is the token its tokenizer
writes right after "### Response:\\n" (`Yes` for SmolLM2). Engines before version 5 used the
first token of " Yes" (with a leading space), a token the model almost never writes there:
stores that recorded those keep them ("leading_space"), so their adapters still verify.
"""

from __future__ import annotations

from typing import Any

from apa_console.errors import ConflictError
from apa_console.prompting import build_prompt

AS_WRITTEN = "as_written"  # the token the tokenizer writes after the prompt (the default)
LEADING_SPACE = "leading_space"  # the first token of " Yes" / " No" (records before it)
ANSWER_STYLES = (AS_WRITTEN, LEADING_SPACE)
ANSWER_WORDS = ("Yes.", "No.")  # TALLRec's outputs


def answer_token_ids(tokenizer: Any, style: str) -> tuple[int, int]:
    """(yes id, no id) in `style`; ConflictError when the tokenizer cannot tell them apart."""
    if style not in ANSWER_STYLES:
        raise ConflictError(f"unknown answer style {style!r}; known: {', '.join(ANSWER_STYLES)}")
    ids = tuple(_first_token(tokenizer, word, style) for word in ANSWER_WORDS)
    if ids[0] == ids[1]:
        raise ConflictError(f"the tokenizer starts {ANSWER_WORDS[0]!r} and {ANSWER_WORDS[1]!r} "
                            f"alike ({style})")
    return ids


def _first_token(tokenizer: Any, word: str, style: str) -> int:
    if style == LEADING_SPACE:
        ids = tokenizer.encode(" " + word.rstrip("."), add_special_tokens=False)
        if not ids:
            raise ConflictError(f"the model's tokenizer encodes {word!r} as no token at all")
        return int(ids[0])
    # A prompt as every sample ends, then the answer: the first token past the prompt's own.
    prompt = build_prompt("Answer with Yes or No.", "A question.")
    before = tokenizer.encode(prompt, add_special_tokens=False)
    after = tokenizer.encode(prompt + word, add_special_tokens=False)
    if after[:len(before)] != before or len(after) == len(before):
        raise ConflictError(f"the model's tokenizer merges {word!r} into the prompt's last "
                            "token, so no answer token follows the prompt")
    return int(after[len(before)])
