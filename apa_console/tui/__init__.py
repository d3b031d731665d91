"""The Textual front-end (`apa-console tui`). Only this package imports Textual."""
