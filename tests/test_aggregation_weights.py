"""Weight formulas and the D/ND merge algebra on plain tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapter_oracles import merged_delta

from apa_console.apa.weights import aggregation_weights, neighbour_errors
from apa_console.engine.mixture import AdapterFactors, MixtureLoRALinear
from apa_console.errors import ConflictError, UsageError


def test_adaptive_weights_follow_the_paper_formula():
    valid = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    errors = np.array([[0.1, 0.3, 0.9], [0.5, 0.5, 0.0]])  # K=2 adapters × V=3
    sample = np.array([[1.0, 0.05]])
    # the two nearest validation rows are 0 and 1
    mean_errors = np.array([0.2, 0.5])
    expected = np.exp(-10 * mean_errors) / np.exp(-10 * mean_errors).sum()
    weights = aggregation_weights(
        "adaptive", sample, valid_embeddings=valid, valid_errors=errors, tau=10, neighbours=2
    )
    assert np.allclose(weights[0], expected)
    major = aggregation_weights(
        "major", sample, valid_embeddings=valid, valid_errors=errors, neighbours=2
    )
    assert major.tolist() == [[1.0, 0.0]]


def test_average_and_semantic_weights():
    sample = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(aggregation_weights("average", sample, n_adapters=4), 0.25)
    centres = np.array([[1.0, 0.0], [0.0, 1.0]])
    weights = aggregation_weights("semantic", sample, centres=centres, tau=5)
    assert np.allclose(weights.sum(axis=1), 1)
    assert weights[0, 0] > weights[0, 1] and weights[1, 1] > weights[1, 0]
    assert np.isclose(weights[0, 0], np.exp(5) / (np.exp(5) + 1))


def test_leave_one_out_never_uses_the_sample_itself():
    valid = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    errors = np.array([[0.0, 1.0, 0.5]])
    loo = neighbour_errors(valid, valid, errors, neighbours=1, exclude_groups=np.arange(3))
    assert loo[0, 0] == 0.5 and loo[1, 0] == 0.5 and loo[2, 0] in (0.0, 1.0)


def test_leave_one_user_out_never_uses_the_users_own_samples():
    # samples 0 and 1 (user a) are each other's nearest; user b's samples are far away
    valid = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [0.5, 0.5]])
    errors = np.array([[0.0, 0.1, 0.8, 0.9, 0.4]])
    users = np.array(["a", "a", "b", "b", "c"])
    by_user = neighbour_errors(valid, valid, errors, neighbours=2, exclude_groups=users)
    by_sample = neighbour_errors(valid, valid, errors, neighbours=2,
                                 exclude_groups=np.arange(5))
    assert by_sample[0, 0] == pytest.approx((0.1 + 0.4) / 2)  # its own user's sample counts
    assert by_user[0, 0] == pytest.approx((0.4 + 0.9) / 2)  # c's, then b's nearest
    assert by_user[2, 0] == pytest.approx((0.4 + 0.1) / 2)  # c's, then a's nearest


def test_a_user_with_fewer_outside_neighbours_averages_over_those_it_has():
    valid = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])
    errors = np.array([[0.2, 0.4, 0.9]])
    users = np.array(["a", "a", "b"])
    result = neighbour_errors(valid, valid, errors, neighbours=5, exclude_groups=users)
    assert result[0, 0] == pytest.approx(0.9) and result[1, 0] == pytest.approx(0.9)
    assert result[2, 0] == pytest.approx(0.3)


def test_a_pool_of_one_user_cannot_be_tuned_on():
    valid = np.array([[1.0, 0.0], [0.9, 0.1]])
    with pytest.raises(ConflictError, match="at least 2 users"):
        neighbour_errors(valid, valid, np.array([[0.2, 0.4]]), neighbours=1,
                         exclude_groups=np.array(["a", "a"]))


def test_unknown_strategy_is_refused():
    with pytest.raises(UsageError):
        aggregation_weights("nope", np.zeros((1, 2)))


def _random_factors(seed: int, modules=("m",), rank=2, dim_in=5, dim_out=3):
    gen = torch.Generator().manual_seed(seed)
    return AdapterFactors(
        a={m: torch.randn(rank, dim_in, generator=gen) for m in modules},
        b={m: torch.randn(dim_out, rank, generator=gen) for m in modules},
        scaling=2.0,
    )


@pytest.mark.parametrize("level", ["D", "ND"])
def test_mixture_layer_matches_explicit_merge_per_row(level):
    adapters = [_random_factors(seed) for seed in range(3)]
    base = torch.nn.Linear(5, 3, bias=False)
    layer = MixtureLoRALinear(
        base,
        torch.stack([ad.a["m"] for ad in adapters]),
        torch.stack([ad.b["m"] for ad in adapters]),
        2.0,
        level,
    )
    omega = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=torch.float64)
    layer.row_weights = omega
    x = torch.randn(2, 4, 5)
    out = layer(x)
    for row in range(2):
        delta = merged_delta(adapters, omega[row].tolist(), level)["m"]
        expected = x[row] @ (base.weight + delta).T
        assert torch.allclose(out[row], expected, atol=1e-5)


def test_decomposition_and_non_decomposition_differ_for_mixed_weights():
    adapters = [_random_factors(seed) for seed in range(2)]
    d = merged_delta(adapters, [0.5, 0.5], "D")["m"]
    nd = merged_delta(adapters, [0.5, 0.5], "ND")["m"]
    assert not torch.allclose(d, nd)
    # with all weight on one adapter both levels are that adapter
    single = merged_delta(adapters, [1.0, 0.0], "D")["m"]
    assert torch.allclose(single, merged_delta(adapters, [1.0, 0.0], "ND")["m"])


def test_auc_on_a_fixture_and_its_undefined_case():
    from apa_console.apa.metrics import auc

    labels = np.array([0, 0, 1, 1])
    # pairs (neg, pos): (0.1,0.35) ok, (0.1,0.8) ok, (0.4,0.35) wrong, (0.4,0.8) ok → 3/4
    assert auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc(np.array([1, 1]), np.array([0.2, 0.9])) is None
