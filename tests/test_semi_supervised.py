"""Semi-supervised probes and the DRL paper's downstream protocol on synthetic codes with known answers."""

import numpy as np
import pytest
import torch

from diffrep.evaluation.downstream import mlp_probe, svm_accuracy
from diffrep.evaluation.semi_supervised import draw_labelled, semi_supervised_accuracy


def moons(n: int, seed: int, noise: float = 0.06) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half-moons (classes 0 and 1), embedded in 4-D with two small noise dimensions:
    a k-NN graph follows each moon, a linear boundary cannot separate them."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=noise, random_state=seed)
    rng = np.random.default_rng(seed)
    x = np.concatenate([x, 0.05 * rng.standard_normal((n, 2))], axis=1)
    return torch.from_numpy(x).float(), torch.from_numpy(y).long()


def test_draw_labelled_takes_k_of_each_class_reproducibly():
    labels = torch.arange(100) % 4
    idx = draw_labelled(labels, 3, seed=5)
    assert torch.bincount(labels[idx]).tolist() == [3, 3, 3, 3]
    assert torch.equal(idx, draw_labelled(labels, 3, seed=5))
    assert not torch.equal(idx, draw_labelled(labels, 3, seed=6))
    with pytest.raises(ValueError, match="fewer than 30 labels per class"):
        draw_labelled(labels, 30, seed=0)


def test_label_spreading_uses_the_unlabelled_codes_and_beats_the_supervised_probe():
    x, y = moons(2000, seed=0)
    xt, yt = moons(1000, seed=1)
    result = semi_supervised_accuracy(x, y, xt, yt, labels_per_class=(3,), seeds=(0, 1, 2))
    supervised, spreading = result["supervised"][3]["mean"], result["label_spreading"][3]["mean"]
    assert spreading > 0.93  # the graph follows each moon
    assert spreading - supervised > 0.1  # a line through 6 points cannot
    assert result["self_training"][3]["mean"] > supervised - 0.05


def test_no_method_finds_structure_in_random_labels():
    x, _ = moons(2000, seed=0)
    xt, _ = moons(1000, seed=1)
    g = torch.Generator().manual_seed(0)
    y, yt = torch.randint(0, 2, (2000,), generator=g), torch.randint(0, 2, (1000,), generator=g)
    result = semi_supervised_accuracy(x, y, xt, yt, labels_per_class=(10,), seeds=(0, 1))
    for method, per_k in result.items():
        assert abs(per_k[10]["mean"] - 0.5) < 0.07, method


def test_unknown_method_is_refused():
    x, y = moons(100, seed=0)
    with pytest.raises(ValueError, match="unknown semi-supervised methods"):
        semi_supervised_accuracy(x, y, x, y, labels_per_class=(1,), methods=("magic",))


def blobs(n: int, seed: int, classes: int = 4, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(123)) * 4
    y = torch.arange(n) % classes
    return centres[y] + torch.randn(n, dim, generator=g), y


def test_svm_separates_separable_codes_and_not_random_labels():
    x, y = blobs(2000, seed=0)
    xt, yt = blobs(800, seed=1)
    assert svm_accuracy(x, y, xt, yt, num_labels=(100,), seeds=(0, 1))[100]["mean"] > 0.97
    g = torch.Generator().manual_seed(0)
    noise_y, noise_yt = torch.randint(0, 4, (2000,), generator=g), torch.randint(0, 4, (800,), generator=g)
    assert abs(svm_accuracy(x, noise_y, xt, noise_yt, num_labels=(100,), seeds=(0,))[100]["mean"] - 0.25) < 0.07
    with pytest.raises(ValueError, match="do not split evenly"):
        svm_accuracy(x, y, xt, yt, num_labels=(10,))


def test_mlp_probe_fits_what_a_linear_probe_cannot_and_ignores_random_labels():
    x, y = moons(1500, seed=0)
    xt, yt = moons(600, seed=1)
    result = mlp_probe(x, y, xt, yt, lr_grid=(1e-2,), seeds=(0, 1), epochs=30)
    assert result["mean"] > 0.97 and result["lr"] == 1e-2
    g = torch.Generator().manual_seed(0)
    noise_y, noise_yt = torch.randint(0, 2, (1500,), generator=g), torch.randint(0, 2, (600,), generator=g)
    assert abs(mlp_probe(x, noise_y, xt, noise_yt, lr_grid=(1e-2,), seeds=(0,), epochs=10)["mean"] - 0.5) < 0.08


@pytest.mark.parametrize("method", ["poisson", "laplace"])
def test_graph_learning_labels_two_separated_clusters_from_one_label_each(method):
    """Calder et al.'s graphlearning on two well-separated clusters, one labelled code per class:
    the graph carries the labels to nearly every test code."""
    x, y = blobs(1000, seed=0, classes=2)
    xt, yt = blobs(400, seed=1, classes=2)
    result = semi_supervised_accuracy(x, y, xt, yt, labels_per_class=(1,), seeds=(0, 1, 2), methods=(method,))
    assert result[method][1]["mean"] > 0.97, result


def test_poisson_learning_beats_the_supervised_probe_on_the_moons():
    x, y = moons(2000, seed=0)
    xt, yt = moons(1000, seed=1)
    result = semi_supervised_accuracy(x, y, xt, yt, labels_per_class=(3,), seeds=(0, 1, 2),
                                      methods=("supervised", "poisson"))
    assert result["poisson"][3]["mean"] > 0.93 and result["poisson"][3]["mean"] - result["supervised"][3]["mean"] > 0.1


def test_every_method_sees_the_same_labelled_draw(monkeypatch):
    """Their gap must be the method's alone: each is handed the same labelled indices per (k, seed)."""
    import diffrep.evaluation.semi_supervised as semi

    seen: dict[str, list[list[int]]] = {}

    def spy(name, predict):
        def wrapped(*args, **kwargs):
            partial = args[2] if name in ("poisson", "laplace") else args[1]
            seen.setdefault(name, []).append(sorted(np.flatnonzero(partial >= 0).tolist()))
            return predict(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(semi, "supervised_predict", spy("supervised", semi.supervised_predict))
    monkeypatch.setattr(semi, "label_spreading_predict", spy("label_spreading", semi.label_spreading_predict))
    monkeypatch.setattr(semi, "self_training_predict", spy("self_training", semi.self_training_predict))
    graph = semi.graph_learning_predict
    monkeypatch.setattr(semi, "graph_learning_predict", lambda m, *a, **k: spy(m, graph)(m, *a, **k))
    x, y = blobs(400, seed=0)
    semi_supervised_accuracy(x, y, x, y, labels_per_class=(2, 5), seeds=(0, 1))
    assert set(seen) == {"supervised", "label_spreading", "self_training", "poisson", "laplace"}
    assert all(draws == seen["poisson"] and len(draws) == 4 for draws in seen.values())


def test_a_missing_graphlearning_package_is_named_with_its_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "graphlearning", None)  # as if it were not installed
    x, y = blobs(100, seed=0)
    with pytest.raises(ValueError, match="need the graphlearning package.*pip install graphlearning"):
        semi_supervised_accuracy(x, y, x, y, labels_per_class=(1,), methods=("poisson",))
