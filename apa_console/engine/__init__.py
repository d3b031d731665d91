"""The engine: the LLM, its forward passes and one adapter's deterministic training.

It knows nothing of the store or the front-ends (import-linter contracts in pyproject.toml).
"""

from apa_console.engine.memory import request_huge_pages

request_huge_pages()  # before any engine module imports torch: torch reads it once
