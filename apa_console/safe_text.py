"""Text that reaches a terminal from outside: datasets' ids and titles, operator input
echoed in a message. One module, under every other, so each layer escapes and shortens text
the same way (the CLI's and the TUI's error sinks apply `one_line` to all they show)."""

from __future__ import annotations

# Control characters (C0, DEL, C1) and bidirectional overrides: a dataset's ids and titles
# could clear the screen, retitle the window, forge an output line or reorder what is shown.
_UNSAFE = {code for code in range(0x20)} | {0x7F} | set(range(0x80, 0xA0)) | {
    0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_ESCAPES = {code: ascii(chr(code))[1:-1] for code in _UNSAFE}


def terminal_safe(value: object) -> str:
    """`value` as text a terminal shows literally: unsafe characters become their escapes
    ("\\x1b", "\\n", "\\u202e"). Markup is the renderer's concern (see `cli.output`)."""
    return str(value).translate(_ESCAPES)


# How much of one operator-given value (an id, an option's value) a message quotes: a 100 KB
# id echoed whole would bury the message it is part of. A path gets twice as much: the
# folder the operator chose and the file under it both say something.
QUOTE_LIMIT = 80
PATH_LIMIT = 2 * QUOTE_LIMIT
# The longest refusal line the CLI writes: a backstop for text no message clipped.
LINE_LIMIT = 1000


def clipped(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` terminal-safe and at most `limit` characters: a longer one keeps its start
    and its end (an id's prefix, a path's file name) around a "…"."""
    text = terminal_safe(value)
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head):]}"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """An operator's value as a message quotes it: 'user42', clipped and escaped."""
    return f"'{clipped(value, limit)}'"


def one_line(message: object, limit: int = LINE_LIMIT) -> str:
    """A message as one terminal line: control characters (newlines too) escaped, any run
    without spaces longer than a clipped quote shortened, and the whole at most `limit`
    characters. What every error sink applies, whatever the message's origin."""
    words = terminal_safe(message).split(" ")
    text = " ".join(clipped(word, PATH_LIMIT) if len(word) > PATH_LIMIT else word
                    for word in words)
    return clipped(text, limit) if len(text) > limit else text
