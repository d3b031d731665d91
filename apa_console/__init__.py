"""apa-console: exact machine unlearning for LLM-based recommenders (APA)."""

__version__ = "0.1.0"
