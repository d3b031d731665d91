"""Per-row mixtures of K LoRA adapters inside one forward pass.

Levels: `D` (decomposition) merges the low-rank factors, Ā = Σω_k A_k and B̄ = Σω_k B_k,
and applies B̄Ā; `ND` (non-decomposition) applies Σω_k B_k A_k. Either way one forward pass
serves a whole batch: `MixtureLoRALinear` computes each row's own mixture inside the LoRA
layers, which costs K cheap low-rank products instead of K full passes or a weight merge
per sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from apa_console.engine.adapter_format import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from apa_console.engine.choices import LEVELS, MixtureLevel  # noqa: F401 (re-exported)
from apa_console.errors import UsageError


@dataclass
class AdapterFactors:
    """One peft LoRA adapter as plain tensors: per target module, A (r×in) and B (out×r)."""

    a: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]
    scaling: float

    @classmethod
    def load(cls, adapter_dir: Path) -> AdapterFactors:
        config = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())
        weights = load_file(str(Path(adapter_dir) / ADAPTER_WEIGHTS))
        a: dict[str, torch.Tensor] = {}
        b: dict[str, torch.Tensor] = {}
        for key, tensor in weights.items():
            module, _, kind = key.rpartition(".lora_")
            # peft names "base_model.model.<module path>.lora_A.weight"
            module = module.removeprefix("base_model.model.")
            (a if kind.startswith("A") else b)[module] = tensor.float()
        rank = int(config["r"])
        scaling = float(config["lora_alpha"]) / (
            rank**0.5 if config.get("use_rslora") else rank
        )
        return cls(a=a, b=b, scaling=scaling)


def check_compatible(adapters: Sequence[AdapterFactors]) -> None:
    if not adapters:
        raise UsageError("no live adapters to aggregate (run `train` first)")
    modules = set(adapters[0].a)
    for adapter in adapters[1:]:
        if set(adapter.a) != modules or adapter.scaling != adapters[0].scaling:
            raise UsageError("the live adapters differ in target modules or scaling")


class MixtureLoRALinear(nn.Module):
    """A frozen Linear plus a per-row mixture of K LoRA paths.

    `row_weights` (batch × K) must be set before each forward pass; row b of the batch gets
    its own ω_b. ND: Σ_k ω_bk B_k A_k x. D: (Σ_k ω_bk B_k)(Σ_k ω_bk A_k) x.
    """

    def __init__(self, base: nn.Linear, a: torch.Tensor, b: torch.Tensor, scaling: float,
                 level: str):
        super().__init__()
        self.base = base
        self.level = level
        self.scaling = scaling
        k, rank, _ = a.shape
        self.n_adapters, self.rank = k, rank
        dtype, device = base.weight.dtype, base.weight.device
        self.register_buffer("a", a.to(device=device, dtype=dtype), persistent=False)  # K,r,in
        self.register_buffer("b", b.to(device=device, dtype=dtype), persistent=False)  # K,out,r
        # ND as two dense matmuls: x·[A_1;…;A_K]ᵀ, scale each rank block by ω, then ·[B_1…B_K]ᵀ
        self.register_buffer("a_stacked", self.a.reshape(k * rank, -1), persistent=False)
        self.register_buffer(
            "b_stacked", self.b.permute(1, 0, 2).reshape(self.b.shape[1], k * rank),
            persistent=False,
        )
        self.row_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        omega = self.row_weights
        if omega is None:
            raise RuntimeError("MixtureLoRALinear used without row weights")
        omega = omega.to(device=x.device, dtype=x.dtype)
        if omega.shape[0] == 1 and x.shape[0] != 1:  # one weight row serves every row
            omega = omega.expand(x.shape[0], -1)
        if omega.shape[0] != x.shape[0]:
            raise RuntimeError(f"row weights for {omega.shape[0]} rows, batch of {x.shape[0]}")
        if self.level == "ND":
            low = x @ self.a_stacked.T  # b,t,K·r
            low = low * omega.repeat_interleave(self.rank, dim=1)[:, None, :]
            delta = low @ self.b_stacked.T
        else:
            a_bar = torch.einsum("bk,kri->bri", omega, self.a)
            b_bar = torch.einsum("bk,kor->bor", omega, self.b)
            delta = torch.bmm(torch.bmm(x, a_bar.transpose(1, 2)), b_bar.transpose(1, 2))
        return out + self.scaling * delta


def _resolve(model: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    parent_path, _, leaf = dotted.rpartition(".")
    return model.get_submodule(parent_path) if parent_path else model, leaf


@contextmanager
def mixture_model(
    model: nn.Module, adapters: Sequence[AdapterFactors], level: str
) -> Iterator[list[MixtureLoRALinear]]:
    """Temporarily replace the adapters' target Linears of a base causal LM with mixture
    layers; the original modules (and their weights, never copied or changed) come back on
    exit. Yields the mixture layers; set their `row_weights` per batch (`set_row_weights`).
    """
    level = parse_level(level)
    check_compatible(adapters)
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    layers: list[MixtureLoRALinear] = []
    try:
        for name in sorted(adapters[0].a):
            parent, leaf = _resolve(model, name)
            original = getattr(parent, leaf)
            layer = MixtureLoRALinear(
                original,
                torch.stack([ad.a[name] for ad in adapters]),
                torch.stack([ad.b[name] for ad in adapters]),
                adapters[0].scaling,
                level,
            )
            setattr(parent, leaf, layer)
            swapped.append((parent, leaf, original))
            layers.append(layer)
        yield layers
    finally:
        for parent, leaf, original in reversed(swapped):
            setattr(parent, leaf, original)


def set_row_weights(layers: Sequence[MixtureLoRALinear], weights: np.ndarray) -> None:
    tensor = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    for layer in layers:
        layer.row_weights = tensor


def parse_level(value: str) -> MixtureLevel:
    """The one check of a mixture level, for every front-end."""
    try:
        return MixtureLevel(value)
    except ValueError:
        raise UsageError(f"unknown level {value!r}; choose D or ND") from None


def score_one_adapter(
    backbone, prompts: list[str], factors: AdapterFactors, *, progress=None, cancel=None,
    task: str = "score", share_prefix: bool = True, batch_size: int | None = None,
) -> np.ndarray:
    """P(Yes) from the base model with one LoRA adapter applied (weight 1). Every row sees
    the same weights, so by default the shared prompt prefix runs once (`share_prefix=False`
    runs every token of every row, the path per-sample mixtures must take)."""
    extra = {k: v for k, v in (("progress", progress), ("cancel", cancel),
                               ("batch_size", batch_size)) if v is not None}
    with mixture_model(backbone.model, [factors], "ND") as layers:
        set_row_weights(layers, np.ones((1, 1)))
        return backbone.score(prompts, task=task, share_prefix=share_prefix, **extra)


def absolute_errors(
    backbone, adapter_dir: Path, prompts: list[str], labels: list[int], *, progress=None,
    cancel=None, task: str = "validation",
) -> np.ndarray:
    """|label − P(Yes)| of one adapter (folder) on (prompt, label) pairs, float32: a column of
    APA's validation error table."""
    if not prompts:
        return np.zeros(0, dtype=np.float32)
    p_yes = score_one_adapter(backbone, prompts, AdapterFactors.load(adapter_dir),
                              progress=progress, cancel=cancel, task=task)
    return np.abs(np.array(labels, dtype=np.float64) - p_yes).astype(np.float32)
