import torch

from diffrep.evaluation.probes import few_label_accuracy, knn_accuracy, linear_probe


def blobs(n: int, num_classes: int = 4, dim: int = 16, spread: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.randint(0, num_classes, (n,), generator=g)
    return centres[y] + spread * torch.randn(n, dim, generator=g), y


def test_linear_probe_and_knn_separate_separable_codes_and_not_random_labels():
    x, y = blobs(800)
    xt, yt = blobs(400, seed=1)
    assert linear_probe(x, y, xt, yt)["accuracy"] > 0.98
    assert knn_accuracy(x, y, xt, yt) > 0.98
    noise_y = torch.randint(0, 4, (800,), generator=torch.Generator().manual_seed(5))
    noise_yt = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(6))
    assert abs(linear_probe(x, noise_y, xt, noise_yt)["accuracy"] - 0.25) < 0.08
    assert abs(knn_accuracy(x, noise_y, xt, noise_yt) - 0.25) < 0.08


def test_few_label_accuracy_improves_with_more_labels():
    x, y = blobs(2000, spread=4.0)
    xt, yt = blobs(1000, spread=4.0, seed=1)
    result = few_label_accuracy(x, y, xt, yt, labels_per_class=(1, 10, 100), seeds=(0, 1, 2, 3, 4))
    assert result[1]["mean"] < result[10]["mean"] < result[100]["mean"]
    assert result[1]["std"] > result[100]["std"]
