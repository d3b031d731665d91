"""Typer front-end: thin commands over the core, one module per command group."""
