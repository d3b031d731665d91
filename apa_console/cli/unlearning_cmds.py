"""`forget`, `apply`, `requests`, `audit`, `verify`: exact unlearning and its proof."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Annotated

import typer

from apa_console.cli import output
from apa_console.cli.common import (
    CpusPerJobOption,
    DeviceOption,
    GpusPerJobOption,
    JsonOption,
    ModelOption,
    RayAddressOption,
    StoreOption,
    WorkersOption,
    dispatch_options,
    new_typer,
    open_store,
)
from apa_console.cli.progress_view import live_progress
from apa_console.errors import UsageError, VerificationError
from apa_console.safe_text import quoted
from apa_console.units import plural
from apa_console.unlearning import audit_log as audit_core
from apa_console.unlearning import describe
from apa_console.unlearning import requests as requests_core
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.user_audit import user_audit
from apa_console.workflows.model import open_backbone

# `forget`, `apply` and `verify` import their core (torch, numpy) when they run, so `requests`,
# `audit` and `--help` start without it.


def _print_plan(plan: dict) -> None:
    first, *rest = describe.plan_lines(plan)
    output.stdout.print(f"[bold]{output.markup_safe(first)}[/bold]")
    if plan["shards"]:
        output.table(describe.PLAN_COLUMNS, describe.plan_rows(plan))
    for line in rest:
        output.stdout.print(output.shown(line))


def _print_receipt(receipt: dict) -> None:
    first, *rest = describe.receipt_lines(receipt)
    output.stdout.print(f"[bold]{output.markup_safe(first)}[/bold]")
    for line in rest:
        output.stdout.print(output.shown(line))


def _confirm(targets: Targets) -> None:
    expected = describe.confirmation_phrase(targets)
    if not sys.stdin.isatty() and sys.stdin.closed:
        raise UsageError("confirmation needed: pass --yes (no terminal to ask on)")
    try:
        typed = typer.prompt(f"type {quoted(expected)} to confirm", default="", show_default=False)
    except (EOFError, typer.Abort):
        raise UsageError("confirmation needed: pass --yes (no terminal to ask on)") from None
    if typed.strip() != expected:
        raise UsageError(f"typed {quoted(typed.strip())}, not {quoted(expected)}: nothing was "
                         "changed")


def _model(store, model, device):
    """Load the model only when a workflow needs it (after the request is recorded)."""
    return lambda: nullcontext(open_backbone(store, model, device))


app = new_typer("Forget, apply, requests, audit, verify.")


@app.command()
def forget(
    user: Annotated[list[str] | None, typer.Option("--user", help="User id (repeatable).")]
    = None,
    sample: Annotated[
        list[str] | None, typer.Option("--sample", help="Sample id (repeatable).")
    ] = None,
    item: Annotated[
        list[str] | None,
        typer.Option("--item", help="Item id: every sample mentioning it (repeatable)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")]
    = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Record the request; `apply` processes it.")
    ] = False,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    gpus_per_job: GpusPerJobOption = None,
    cpus_per_job: CpusPerJobOption = None,
    json: JsonOption = False,
) -> None:
    """Forget users, samples or items: remove their samples and retrain only the affected
    shards' adapters, then write a receipt."""
    from apa_console.workflows import forget as forgetting

    targets = Targets(users=user or [], samples=sample or [], items=item or [])
    dispatch = dispatch_options(workers, ray_address, gpus_per_job, cpus_per_job)
    target = open_store(store)
    if dry_run:
        plan = forgetting.plan(target, targets)
        if json:
            output.emit_json({"plan": plan})
        else:
            _print_plan(plan)
        return

    def confirm(plan: dict) -> None:
        if not json:
            _print_plan(plan)
        if not yes:
            _confirm(targets)

    with live_progress(quiet=json) as (bars, cancel):
        outcome = forgetting.forget(target, targets, _model(target, model, device),
                                    confirm=confirm, queue=queue, progress=bars, cancel=cancel,
                                    dispatch=dispatch)
    if json:
        output.emit_json(outcome.to_dict())
        return
    if outcome.request is None:
        _print_plan(outcome.plan)
    elif outcome.queued:
        output.stdout.print(f"queued request {outcome.request}; run `apa-console apply` · "
                            f"audit head {outcome.audit_head}")
    for receipt in outcome.receipts:
        _print_receipt(receipt)


@app.command()
def apply(
    store: StoreOption = None, model: ModelOption = None, device: DeviceOption = None,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    gpus_per_job: GpusPerJobOption = None,
    cpus_per_job: CpusPerJobOption = None,
    json: JsonOption = False,
) -> None:
    """Process every pending forget request (each affected shard retrains once)."""
    from apa_console.workflows import forget as forgetting

    dispatch = dispatch_options(workers, ray_address, gpus_per_job, cpus_per_job)
    target = open_store(store)
    with live_progress(quiet=json) as (bars, cancel):
        outcome = forgetting.apply_pending(target, _model(target, model, device),
                                           progress=bars, cancel=cancel, dispatch=dispatch)
    if json:
        output.emit_json(outcome.receipts)
        return
    if not outcome.receipts:
        removed = outcome.leftovers_removed
        output.info("no pending requests"
                    + (f"; removed {plural(len(removed), 'leftover file')}" if removed else ""))
    for receipt in outcome.receipts:
        _print_receipt(receipt)


requests_app = new_typer("Forget requests: list them, or withdraw a queued one.")
requests_app.info.invoke_without_command = True
requests_app.info.no_args_is_help = False


@requests_app.callback()
def requests(ctx: typer.Context, store: StoreOption = None, json: JsonOption = False) -> None:
    """List forget requests with status, timings and shards."""
    if ctx.invoked_subcommand:
        return
    rows = requests_core.list_requests(open_store(store))
    if json:
        output.emit_json(rows)
        return
    if not rows:
        output.info("no requests")
        return
    output.table(
        ["request", "status", "created", "finished", "shards", "removed"],
        ([r["id"], r["status"], r.get("created"), r.get("finished") or "–",
          ",".join(map(str, r.get("affected_shards", []))) or "–",
          describe.split_summary(r["removed"]) if r.get("removed") else "–"]
         for r in rows),
    )
    for r in rows:
        if r["open"]:
            output.stdout.print(output.shown(r["state"]))


@requests_app.command("cancel")
def requests_cancel(
    request: Annotated[str, typer.Argument(help="Request id, e.g. r0003.")],
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Withdraw a queued request before `apply` runs it (nothing was removed yet)."""
    row = requests_core.cancel(open_store(store), request)
    if json:
        output.emit_json(row)
        return
    output.stdout.print(output.shown(f"{request}: withdrawn; nothing was removed"))


app.add_typer(requests_app, name="requests")

audit_app = new_typer("Where a user's data is, the hash-chained log, and its checks.")
audit_app.info.invoke_without_command = True
audit_app.info.no_args_is_help = False


@audit_app.callback()
def audit_main(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="User to account for.")]
    = None,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """`audit --user U`: which shards hold U's data now, or held it and when it was removed.
    Without --user: the log."""
    if ctx.invoked_subcommand:
        return
    target = open_store(store)
    if user is not None:
        result = user_audit(target, user)
        if json:
            output.emit_json(result)
            return
        if result["present"]:
            held = ", ".join(f"{where} ({plural(n, 'sample')})"
                             for where, n in result["holds"].items())
            output.stdout.print(output.shown(f"user {user} has data in: {held}"))
        else:
            output.stdout.print(output.shown(f"user {user} holds no data in this store"))
        for h in result["requests"]:
            removed = describe.split_summary(h["removed"]) if h["removed"] else "–"
            output.stdout.print(
                f"  {h['state']}: shards {', '.join(map(str, h['shards'])) or '–'}, "
                f"removed {removed}, finished {h['finished'] or 'not yet'}"
            )
        return
    log = audit_core.entries(target)
    if json:
        output.emit_json(log)
        return
    output.table(["seq", "time", "event", "hash"],
                 ([e["seq"], e["time"], e["event"], e["hash"][:16]] for e in log))


@audit_app.command("head")
def audit_head(store: StoreOption = None, json: JsonOption = False) -> None:
    """Print the chain's head: record it outside the store, and check it later with
    `audit verify --expect-head`."""
    target = open_store(store)
    head, count = audit_core.current_head(target), len(audit_core.entries(target))
    if json:
        output.emit_json({"head": head, "entries": count})
    else:
        output.stdout.print(head)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", metavar="HEAD",
                     help="A head recorded earlier (from a receipt or `audit head`): fail "
                     "unless the chain still holds it."),
    ] = None,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Check the keyed hash chain, an anchored head, and that every live adapter's weights
    match their sha256 in the adapters table and in the log."""
    result = audit_core.verify_store(open_store(store), expect_head=expect_head)
    if json:
        output.emit_json(result)
    else:
        sealed = "keyed (HMAC-SHA256)" if result["authenticated"] else "UNAUTHENTICATED (sha256)"
        output.stdout.print(
            f"audit chain: {plural(result['entries'], 'entry', 'entries')}, "
            f"{sealed} · {plural(len(result['adapters']), 'live adapter')} checked"
        )
        output.stdout.print(f"head {result['head']}")
        if result["anchor"] is not None:
            output.stdout.print(f"anchored head found; {result['anchor']['entries_after']} "
                                "entries follow it")
        for note in result["notes"]:
            output.stdout.print(f"  [yellow]note[/yellow] {output.markup_safe(note)}")
        for problem in result["problems"]:
            output.stdout.print(f"  [red]FAIL[/red] {output.markup_safe(problem)}")
        output.stdout.print("[green]PASS[/green]" if result["ok"] else "[red]FAIL[/red]")
    if not result["ok"]:  # the report above; the verdict as the one error line
        raise VerificationError(
            f"audit verification failed: {plural(len(result['problems']), 'problem')}, first: "
            f"{result['problems'][0]}"
        )

app.add_typer(audit_app, name="audit")


@app.command()
def verify(
    request: Annotated[str, typer.Option("--request", "-r", help="Request id, e.g. r0001.")],
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    gpus_per_job: GpusPerJobOption = None,
    cpus_per_job: CpusPerJobOption = None,
    json: JsonOption = False,
) -> None:
    """Retrain the request's shards from their current manifests, check bit-identity with
    the live adapters, and scan the store for traces of the removed samples."""
    from apa_console.unlearning.verify import verify_request

    dispatch = dispatch_options(workers, ray_address, gpus_per_job, cpus_per_job)
    target = open_store(store)
    backbone = open_backbone(target, model, device)
    with live_progress(quiet=json) as (bars, cancel):
        result = verify_request(target, backbone, request, progress=bars, cancel=cancel,
                                dispatch=dispatch)
    if json:
        output.emit_json(result)
    else:
        for check in result["shards"]:
            mark = "[green]PASS[/green]" if check["ok"] else "[red]FAIL[/red]"
            detail = check.get("detail") or (
                f"live {check['live_sha256'][:12]} · "
                f"retrained {check['retrained_sha256'][:12]}")
            output.stdout.print(f"{mark} shard {check['shard']}: {detail}")
        mark = "[green]PASS[/green]" if not result["traces"] else "[red]FAIL[/red]"
        output.stdout.print(f"{mark} trace scan: {plural(len(result['traces']), 'trace')}")
        for trace in result["traces"]:
            output.stdout.print(output.shown(f"  {trace}"))
    if not result["ok"]:
        raise VerificationError(f"verification of {request} failed")
