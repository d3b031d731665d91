"""Reference computations the tests compare the engine against: an adapter loaded by plain
peft, and a merged adapter's full weight update written out term by term."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from apa_console.engine.adapter_format import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from apa_console.engine.backbone import Backbone
from apa_console.engine.mixture import AdapterFactors, check_compatible
from apa_console.errors import NotFoundError


def load_adapter_model(
    backbone: Backbone, adapter_dir: str | os.PathLike, adapter_name: str = "default"
) -> torch.nn.Module:
    """A peft model (eval mode) with the adapter in `adapter_dir`, for `score(model=...)`.

    Protocol: the adapter is attached to a weight-sharing copy of the base model
    (`Backbone.shared_weight_copy`), so `backbone.model` keeps scoring without it and any
    number of adapters can be attached at once; drop the returned model to detach. Never
    merge an adapter into the returned model: the base weights are shared.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    for required in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (adapter_dir / required).is_file():
            raise NotFoundError(f"adapter folder {adapter_dir} has no {required}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # peft's own deprecations
        model = PeftModel.from_pretrained(
            backbone.shared_weight_copy(),
            adapter_dir,
            adapter_name=adapter_name,
            is_trainable=False,
        )
    return model.eval()


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
