"""Options shared by every command, and how known errors become exit codes."""

from __future__ import annotations

import inspect
import os
import re
import traceback
from pathlib import Path
from typing import Annotated, get_args

import typer
from typer.core import TyperGroup

try:  # typer >= 0.29 vendors click; older releases use click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click import ClickException
    from click.exceptions import NoArgsIsHelpError

from apa_console.cli.output import error_line
from apa_console.errors import ApaError, ExitCode, StoreInvalidError, UsageError
from apa_console.fileio import is_filesystem_refusal, os_refusal
from apa_console.store.document import STORE_ENV, STORE_FILE, Store

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Store directory (default ./store, or $APA_STORE).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Local Hugging Face model directory (default: the model the store was built with, "
        "else SmolLM2-135M-Instruct).",
        metavar="DIR",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="cpu, cuda or cuda:N (default: CUDA when available).",
                 show_default=False),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print data as JSON on stdout (diagnostics on stderr).")
]

# Shard jobs on Ray (the `[ray]` extra): every command that trains adapters takes these.
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", min=1, show_default=False, rich_help_panel="Ray",
                 help="Train shards on N Ray workers (a local Ray instance; with "
                      "--ray-address, at most N workers on that cluster)."),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="HOST:PORT", show_default=False,
                 rich_help_panel="Ray",
                 help="Run shard jobs on the Ray cluster at HOST:PORT (or auto)."),
]
GpusPerJobOption = Annotated[
    float | None,
    typer.Option("--gpus-per-job", min=0, show_default=False, rich_help_panel="Ray",
                 help="GPUs each Ray worker reserves (0.5: two share one; default 1 on "
                      "CUDA, else 0)."),
]
CpusPerJobOption = Annotated[
    float | None,
    typer.Option("--cpus-per-job", min=0, show_default=False, rich_help_panel="Ray",
                 help="CPUs each Ray worker reserves (default 1)."),
]


def dispatch_options(workers: int | None, address: str | None, gpus: float | None,
                     cpus: float | None):
    """None (this process, one shard after another) unless a Ray flag was given; bad
    combinations exit 2 before anything runs."""
    from apa_console.engine.dispatch_options import DispatchOptions

    options = DispatchOptions(workers, address, gpus, cpus)
    return options.check() if options.distributed or gpus is not None or cpus is not None \
        else None


def open_store(path: Path | None) -> Store:
    return Store.open(path)


def debug_enabled() -> bool:
    return os.environ.get("APA_DEBUG", "") not in ("", "0")


def filesystem_refusal(exc: OSError) -> ApaError:
    """A filesystem refusal that reached the CLI without a write path's own message: still
    a refusal, not a bug. Exit 5 when it concerns a file of a store (a folder holding
    apa.json above it), else 2 (a path the operator gave)."""
    path = exc.filename2 or exc.filename
    try:
        in_store = path is not None and any(
            (folder / STORE_FILE).is_file()
            for folder in Path(os.fsdecode(path)).absolute().parents)
    except OSError:  # a name too long to look at, say: not a store's
        in_store = False
    return os_refusal(exc, "use", StoreInvalidError if in_store else UsageError)


def _usage_exit(exc: ClickException) -> typer.Exit:
    """A bad option, argument or command name as one line (Click draws a usage box)."""
    ctx = getattr(exc, "ctx", None)
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    error_line(" ".join(exc.format_message().split()) + hint)
    return typer.Exit(exc.exit_code)


MAX_TIGHT_CHOICES = 18


def _metavar(param) -> str | None:
    """What an option's value is called in help: nothing for an on/off flag (Typer writes
    `<bool>`, which reads as if it took a value), `[a|b|c]` for a choice, N for a count,
    PATH for a path, else the option's own name (`--user USER`)."""
    if param.is_flag or param.count:
        return ""
    described = param.type_descriptor
    if described.choices:
        names = [str(getattr(choice, "value", choice)) for choice in described.choices]
        # a long list gets spaces to wrap at: help's narrow type column would split a word
        return "[" + ("|" if len("|".join(names)) <= MAX_TIGHT_CHOICES else " | ").join(
            names) + "]"
    annotation = described.annotation
    if described.is_list:
        annotation = get_args(annotation)[0] if get_args(annotation) else str
    if annotation is int:
        return "N"
    if annotation is float:
        return "NUMBER"
    if described.is_path or annotation is Path:
        return "PATH"
    longest = max(param.opts, key=len)
    return longest.lstrip("-").upper().replace("-", "_")


def _tidy_argument(param) -> None:
    """An argument by its name in capitals (`PATH`, `[PATH]` when optional) on the usage line,
    where Typer writes `{path}`; its type column stays empty, the name says it."""
    if param.metavar is None:
        param.metavar = param.name.upper()
    usage = param.metavar if param.required else f"[{param.metavar}]"
    usage += "..." if param.nargs != 1 else ""
    param.get_usage_pieces = lambda ctx: [usage]
    param.display_type_rich = lambda ctx: None


def _tidy_metavars(params: list) -> None:
    for param in params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and param.metavar is None:
            param.metavar = _metavar(param)
        elif kind == "argument" and not getattr(param, "_tidied", False):
            _tidy_argument(param)
            param._tidied = True


def _one_paragraph_per_line(text: str | None) -> str | None:
    """A docstring's wrapped lines joined, paragraphs kept: the help formatter re-wraps them,
    and a kept line break would end a line mid-sentence."""
    if not text:
        return text
    return re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(text))


class ApaGroup(TyperGroup):
    """Maps known failures to one stderr line and their documented exit code."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        _tidy_metavars(params)
        return params

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            command.help = _one_paragraph_per_line(command.help)
            if not isinstance(command, ApaGroup):
                _tidy_metavars(command.get_params(ctx))  # a group tidies its own
        return command

    def make_context(self, info_name, args, parent=None, **extra):
        # the top-level options are parsed here, outside `invoke`
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            raise _usage_exit(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError):
            raise
        except ClickException as exc:
            raise _usage_exit(exc) from None
        except ApaError as exc:
            if debug_enabled():
                traceback.print_exc()
            error_line(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(int(ExitCode.CANCELLED)) from None
        except Exception as exc:  # a bug: keep it to one line unless debugging
            if debug_enabled():
                raise
            if is_filesystem_refusal(exc):  # the filesystem said no: the operator's to fix
                refusal = filesystem_refusal(exc)
                error_line(str(refusal))
                raise typer.Exit(int(refusal.exit_code)) from None
            error_line(
                f"unexpected {type(exc).__name__}: {exc} (set APA_DEBUG=1 for the traceback)"
            )
            raise typer.Exit(int(ExitCode.ERROR)) from None


def new_typer(help_text: str, add_completion: bool = False) -> typer.Typer:
    """A command group; only the root app adds `--install-completion`/`--show-completion`."""
    return typer.Typer(
        help=help_text,
        cls=ApaGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=add_completion,
    )
