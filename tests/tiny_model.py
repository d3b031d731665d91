"""A tiny, seeded Llama-architecture causal LM that the tests build themselves (no download).

The tokenizer is a byte-level BPE trained in-process on a fixed corpus of TALLRec-style text,
so it tokenizes real prompts the way the default model's GPT-2-style tokenizer does: the
answer words " Yes" and " No" are single, distinct tokens. The model is a `LlamaForCausalLM`
(hidden 64, 2 layers, 4 heads, 2 key/value heads, q_proj/v_proj modules) initialised from a
fixed seed, so `build_tiny_model` writes identical weights every time.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from apa_console.prompting import ALPACA_PREAMBLE, BOOK_INSTRUCTION, MOVIE_INSTRUCTION, build_prompt

TINY_SEED = 1234
SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>")
TITLES = (
    "Toy Story (1995)",
    "Jumanji (1995)",
    "Heat (1995)",
    "GoldenEye (1995)",
    "Casino (1995)",
    "Braveheart (1995)",
    "Apollo 13 (1995)",
    "Star Wars (1977)",
    "Fargo (1996)",
    "Titanic (1997)",
    "The Matrix (1999)",
    "Alien (1979)",
)


def _corpus() -> list[str]:
    """Fixed text covering every word that the TALLRec prompts and the tests use."""
    lines = [ALPACA_PREAMBLE, MOVIE_INSTRUCTION, BOOK_INSTRUCTION, " Yes. No. Yes No"]
    for offset in range(len(TITLES)):
        liked = ", ".join(f'"{TITLES[(offset + i) % len(TITLES)]}"' for i in range(3))
        disliked = ", ".join(f'"{TITLES[(offset + 5 + i) % len(TITLES)]}"' for i in range(2))
        target = TITLES[(offset + 9) % len(TITLES)]
        input_text = (
            f"User Preference: {liked}\nUser Unpreference: {disliked}\n"
            f'Whether the user will like the target movie "{target}"?'
        )
        answer = "Yes." if offset % 2 else "No."
        lines.append(build_prompt(MOVIE_INSTRUCTION, input_text) + answer)
    # Repeated so the answer words win merges early and are guaranteed single tokens.
    lines.extend([" Yes", " No", " Yes.", " No."] * 50)
    return lines


def build_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
    )


def build_tiny_model(directory: str | Path, seed: int = TINY_SEED) -> Path:
    """Write the tiny model and its tokenizer as a Hugging Face directory; returns it.

    Another `seed` gives another model of the same shape (for model-mismatch tests).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    for word in (" Yes", " No"):
        ids = tokenizer.encode(word, add_special_tokens=False)
        assert len(ids) == 1, f"{word!r} is not a single token in the tiny tokenizer: {ids}"
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        # Wider than the usual 0.02 so that different prompts give visibly different scores.
        initializer_range=0.2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    (directory / "tiny_model.json").write_text(json.dumps({"seed": seed}) + "\n")
    return directory
