"""The words of a forget plan and of a receipt, shared by the CLI and the TUI so an operator
reads the same thing in both."""

from __future__ import annotations

from typing import Any

from apa_console.units import plural, seconds
from apa_console.unlearning.targets import Targets

PLAN_COLUMNS = ("shard", "removed", "remaining", "adapter", "action", "estimate")


def subject_label(plan: dict[str, Any]) -> str:
    """"user u1" / "user u1, sample s9": what the plan was made for."""
    return Targets.from_dict(plan["targets"]).label()


def confirmation_phrase(targets: Targets) -> str:
    """What an operator types to confirm a forget: the id of a single subject, or the count
    ("3 users") when several go at once, so the number is read before it is typed."""
    subjects = targets.users + targets.samples + targets.items
    if len(subjects) == 1:
        return subjects[0]
    if len(targets.users) == len(subjects):
        return plural(len(subjects), "user")
    return plural(len(subjects), "subject")


def split_summary(counts: dict[str, int]) -> str:
    return (f"train {counts.get('train', 0)}, valid {counts.get('valid', 0)}, "
            f"test {counts.get('test', 0)}")


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan in a few lines: what goes, what retrains, how long; notes after."""
    counts = plan["samples"]
    total = sum(counts.values())
    label = subject_label(plan)
    if total == 0:
        lines = [f"{label} has no data left to forget"]
    else:
        users = plan.get("users", [])
        lines = [
            f"Forget {label}: {plural(total, 'sample')} ({split_summary(counts)}) "
            f"of {plural(len(users), 'user')}",
            *queued_lines(plan),
            f"retrain {len(plan['adapters_to_retrain'])} of "
            f"{plural(plan['total_shards'], 'shard adapter')} · {estimate_text(plan)}",
        ]
    if plan.get("users_are_records"):
        lines.append("note: this dataset was imported without user ids, so each record is "
                     "its own user and --user removes that one record")
    lines += [f"{already} was already forgotten" for already in plan["already_forgotten"]]
    return lines


# what an estimate rests on, in words (requests.MEASURED / ADAPTER_TIMES)
ESTIMATE_BASIS = {
    "measured": "the speed measured on this machine",
    "adapter times": "the adapters' training times (nothing measured on this machine yet)",
}


def estimate_basis(plan: dict[str, Any]) -> str:
    return ESTIMATE_BASIS.get(plan.get("estimate_basis") or "", "")


def estimate_text(plan: dict[str, Any]) -> str:
    """"estimated 1m02s from the speed measured on this machine, plus loading the model"."""
    if not plan["adapters_to_retrain"]:
        return "nothing to retrain"
    basis = estimate_basis(plan)
    return (f"estimated {seconds(plan['estimate_s'])}" + (f" from {basis}" if basis else "")
            + ", plus loading the model")


def queued_lines(plan: dict[str, Any]) -> list[str]:
    """The open requests a forget also runs: the operator confirms those too."""
    queued = plan.get("queued") or []
    if not queued:
        return []
    lines = [f"also runs {plural(len(queued), 'open request')} (each gets its own receipt):"]
    for q in queued:
        what = (f"{plural(q['samples'], 'sample')} already removed, retrain pending"
                if q["purged"] else f"removes {plural(q['samples'], 'sample')}")
        lines.append(f"  {q['request']}: {q['label'] or 'forgotten subject'}"
                     f", {what}, shards {', '.join(map(str, q['shards'])) or '–'}")
    return lines


def plan_rows(plan: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per affected shard, in PLAN_COLUMNS order."""
    return [(str(s["shard"]), str(s["removed"]), str(s["remaining"]), s["adapter"] or "–",
             s["action"], seconds(s["estimate_s"])) for s in plan["shards"]]


def receipt_lines(receipt: dict[str, Any]) -> list[str]:
    """A receipt: what was removed, each shard's adapter before → after, the subjects."""
    lines = [f"receipt {receipt['request']} · removed {split_summary(receipt['removed'])} · "
             f"{seconds(receipt['wall_s'])}"]
    for change in receipt["adapters"]:
        before, after = change["before"], change["after"]
        lines.append(
            f"  shard {change['shard']}: {before['id']} ({before['sha256'][:12]}) → "
            + (f"{after['id']} ({after['sha256'][:12]})" if after else "retired (shard empty)"))
    if receipt.get("baseline_retired"):
        lines.append(f"  {receipt['baseline_retired']} (all-data baseline) retired: it held "
                     "the removed data; `apa-console train --retrain-baseline` rebuilds it")
    lines.append("  subjects (pseudonyms): "
                 + ", ".join(subject[:16] for subject in receipt["subjects"]))
    if receipt.get("audit_head"):
        lines.append(f"  audit head {receipt['audit_head']} (record it: `apa-console audit "
                     "verify --expect-head` checks the log still holds it)")
    return lines
