"""apa-console: exact machine unlearning for LLM-based recommenders (APA)."""

from .cpu_memory import request_huge_pages

request_huge_pages()  # before anything imports torch: torch reads it once (cpu_memory.py)

__version__ = "0.1.0"
