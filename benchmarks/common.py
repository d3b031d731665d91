"""What the benchmarks share: where MovieLens-100K lives, the one-time base store (data plus
every split's hidden states) that each configuration copies, and the machine's description."""

from __future__ import annotations  # noqa: I001 (apa_console.engine must come before torch)

# Engine first: importing it requests huge pages, which torch reads once, as it loads.
from apa_console.engine.backbone import Backbone
from apa_console.engine.devices import available_cores
import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from apa_console.apa.embeddings import embeddings_for, split_samples
from apa_console.data.demo import generate_demo
from apa_console.data.ingest import write_dataset
from apa_console.data.movielens import load_movielens
from apa_console.progress import ProgressCallback, ignore_progress
from apa_console.store.document import Store
from apa_console.store.model_record import record_model

ML100K = Path(os.environ.get("APA_ML100K") or
              Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")


def load_source(data: Path | str):
    """(parsed dataset, description): MovieLens-100K raw files, or "demo" for the generated
    set. Raises FileNotFoundError with the reason when the files are absent."""
    if str(data) == "demo":
        return generate_demo(), "generated demo dataset"
    data = Path(data)
    if not (data / "u.data").is_file():
        raise FileNotFoundError(f"MovieLens-100K raw files not found in {data} "
                                "(pass --data DIR, or --data demo for the generated set)")
    return load_movielens(data), f"MovieLens-100K ({data.name}, TALLRec split)"


def movielens_arguments(prog: str, doc: str, train: int, test: int) -> argparse.ArgumentParser:
    """A parser with the options every MovieLens benchmark takes (data, model, sizes, --json)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc.split("\n")[0])
    parser.add_argument("--data", default=str(ML100K), help="MovieLens-100K raw files")
    parser.add_argument("--model", help="a local Hugging Face model directory")
    parser.add_argument("--train", type=int, default=train)
    parser.add_argument("--test", type=int, default=test)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def run_and_write(run: Callable[[], dict], json_path: Path | None) -> int:
    """Run a benchmark; exit status 2 with one line when its data or model is missing."""
    from apa_console.errors import ApaError

    try:
        result = run()
    except (ApaError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def build_base_store(root: Path, backbone: Backbone, parsed, sizes: dict[str, int],
                     seed: int = 0, progress: ProgressCallback = ignore_progress) -> Store:
    """Ingest once and cache every split's hidden states; configurations copy this store."""
    store = Store.create(root)
    write_dataset(store, parsed, sizes, seed=seed)
    record_model(store, backbone.info)
    with store.locked():
        for split in ("train", "valid", "test"):
            embeddings_for(store, backbone, split_samples(store, split), split=split,
                           save=True, progress=progress)
    return store


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def machine_description(backbone: Backbone) -> str:
    cpu = _cpu_name()
    memory = _memory_gib()
    if memory is not None:
        cpu += f", {memory:.0f} GiB"
    if backbone.device.type == "cuda":
        where = torch.cuda.get_device_name(backbone.device)
    else:
        where = f"CPU ({cpu}, {available_cores()} cores, torch {torch.__version__})"
    return f"{where}; {backbone.info['name']} in {str(backbone.dtype).replace('torch.', '')}"
