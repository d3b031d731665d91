"""Sample-adaptive aggregation of shard adapters (APA step 3).

Weights: each test sample gets ω ∈ Δ^K over the K live adapters.
- `adaptive`: the n validation samples most similar to it (cosine of hidden states);
   error_k = mean |label − P_k(Yes)| over them; ω = softmax(−τ·error).
- `average`:  ω = 1/K.
- `major`:    all weight on the adapter with the smallest adaptive error.
- `semantic`: ω = softmax(τ·cos(sample, shard centre)).

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

from apa_console.errors import UsageError

STRATEGIES = ("adaptive", "average", "major", "semantic")
LEVELS = ("D", "ND")
DEFAULT_TAU = 500.0
DEFAULT_NEIGHBOURS = 20


# -- weights ---------------------------------------------------------------------------


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def neighbour_errors(
    sample_embeddings: np.ndarray,
    valid_embeddings: np.ndarray,
    valid_errors: np.ndarray,
    neighbours: int,
    exclude_self: bool = False,
) -> np.ndarray:
    """error[m, k] = mean error of adapter k over sample m's `neighbours` most similar
    validation samples. `valid_errors` is (K, V). With `exclude_self` (leave-one-out tuning
    on the validation pool itself) a sample is never its own neighbour."""
    n_valid = valid_embeddings.shape[0]
    if n_valid == 0:
        raise UsageError("the validation pool is empty: adaptive weights need validation samples")
    similarity = _unit(sample_embeddings) @ _unit(valid_embeddings).T
    if exclude_self:
        np.fill_diagonal(similarity, -np.inf)
        n_valid -= 1
    count = max(1, min(neighbours, n_valid))
    # argsort on (-similarity, index) keeps ties deterministic
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :count]
    return valid_errors.astype(np.float64)[:, nearest].mean(axis=2).T  # (M, K)


def aggregation_weights(
    strategy: str,
    sample_embeddings: np.ndarray,
    *,
    valid_embeddings: np.ndarray | None = None,
    valid_errors: np.ndarray | None = None,
    centres: np.ndarray | None = None,
    tau: float = DEFAULT_TAU,
    neighbours: int = DEFAULT_NEIGHBOURS,
    n_adapters: int | None = None,
    exclude_self: bool = False,
) -> np.ndarray:
    """(M, K) weights, each row summing to 1."""
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    n_samples = sample_embeddings.shape[0]
    if strategy == "average":
        k = n_adapters if n_adapters is not None else len(valid_errors)  # type: ignore[arg-type]
        return np.full((n_samples, k), 1.0 / k)
    if strategy == "semantic":
        if centres is None:
            raise UsageError("semantic weights need shard centres (run `partition` first)")
        return softmax_rows(tau * (_unit(sample_embeddings) @ _unit(centres).T))
    if valid_embeddings is None or valid_errors is None:
        raise UsageError("adaptive weights need the validation cache (run `train` first)")
    errors = neighbour_errors(
        sample_embeddings, valid_embeddings, valid_errors, neighbours, exclude_self
    )
    if strategy == "major":
        weights = np.zeros_like(errors)
        weights[np.arange(n_samples), np.argmin(errors, axis=1)] = 1.0
        return weights
    return softmax_rows(-tau * errors)


# -- adapter factors -------------------------------------------------------------------


@dataclass
class AdapterFactors:
    """One peft LoRA adapter as plain tensors: per target module, A (r×in) and B (out×r)."""

    a: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]
    scaling: float

    @classmethod
    def load(cls, adapter_dir: Path) -> AdapterFactors:
        config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
        weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
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


def merged_factors(
    adapters: Sequence[AdapterFactors], weights: Sequence[float]
) -> AdapterFactors:
    """Decomposition-level merge for one weight vector: Ā = Σω A_k, B̄ = Σω B_k."""
    check_compatible(adapters)
    a = {m: sum(w * ad.a[m] for w, ad in zip(weights, adapters)) for m in adapters[0].a}
    b = {m: sum(w * ad.b[m] for w, ad in zip(weights, adapters)) for m in adapters[0].b}
    return AdapterFactors(a=a, b=b, scaling=adapters[0].scaling)


def merged_delta(
    adapters: Sequence[AdapterFactors], weights: Sequence[float], level: str
) -> dict[str, torch.Tensor]:
    """The full weight update per module for one weight vector (for checks, not serving)."""
    if level == "D":
        merged = merged_factors(adapters, weights)
        return {m: merged.scaling * merged.b[m] @ merged.a[m] for m in merged.a}
    check_compatible(adapters)
    scaling = adapters[0].scaling
    return {
        m: scaling * sum(w * ad.b[m] @ ad.a[m] for w, ad in zip(weights, adapters))
        for m in adapters[0].a
    }


# -- batched per-sample mixture --------------------------------------------------------


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
    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}; choose D or ND")
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
