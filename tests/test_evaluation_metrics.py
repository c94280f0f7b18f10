"""Reconstruction metrics, FID with a registered extractor, the report, and rank-split gathering."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import digits

from diffrep.evaluation.distributed import generate_items, map_items
from diffrep.evaluation.extractor import SmallClassifier, load_classifier, save_classifier, train_classifier
from diffrep.evaluation.fid import frechet_distance, to_uint8_rgb
from diffrep.evaluation.reconstruction import image_errors
from diffrep.report import build_report, comparison, headline, tables, to_markdown, to_text, write_report


def test_label_scarce_metrics_print_as_a_papers_table_and_reports_are_never_overwritten(tmp_path):
    metrics = {"semi/label_spreading_1_mean": 0.41, "semi/label_spreading_1_std": 0.02,
               "semi/label_spreading_10_mean": 0.75, "semi/label_spreading_10_std": 0.01,
               "semi/logistic_10_mean": 0.70, "semi/logistic_10_std": 0.03, "probe/linear_accuracy": 0.79}
    image = tmp_path / "run/images/reconstructions_step0000010.png"
    report = build_report("DRL", "FashionMNIST", None, metrics, {"global_step": 10, "images": [str(image)]})
    md = to_markdown(report, tmp_path / "run")
    assert "| method | 1 per class | 10 per class |" in md
    assert "| label_spreading | 0.4100 ± 0.0200 | 0.7500 ± 0.0100 |" in md
    assert "| logistic | - | 0.7000 ± 0.0300 |" in md and "_mean" not in md
    assert "![reconstructions_step0000010](images/reconstructions_step0000010.png)" in md
    text = to_text(report)
    assert "| label_spreading | 0.4100 ± 0.0200 | 0.7500 ± 0.0100 |" in text and f"image: {image}" in text
    assert headline(report) == "DRL (step 10): linear probe 79.0%, label spreading (10/class) 75.0%"
    both = {**metrics, "probe/few_label_10_mean": 0.6, "probe/few_label_10_std": 0.1}
    titles = [title for title, _, _ in tables(both)]
    assert len(titles) == len(set(titles)), titles  # a group with both kinds of table titles each its own way
    first = write_report(report, tmp_path / "last.report", overwrite=False)
    second = write_report({**report, "global_step": 20}, tmp_path / "last.report", overwrite=False)
    assert [p.name for p in first] == ["last.report.json", "last.report.md"]
    assert [p.name for p in second] == ["last.report-v1.json", "last.report-v1.md"]
    assert json.loads(first[0].read_text())["global_step"] == 10


def test_image_errors_match_closed_forms():
    x = torch.rand(5, 1, 16, 16) * 1.6 - 0.8
    same = image_errors(x, x)
    assert torch.all(same["mse"] == 0) and torch.allclose(same["ssim"], torch.ones(5))
    shifted = image_errors(x + 0.2, x)  # +0.1 on the [0, 1] scale: MSE 0.01, PSNR 20 dB
    assert torch.allclose(shifted["mse"], torch.full((5,), 0.01), atol=1e-6)
    assert torch.allclose(shifted["psnr"], torch.full((5,), 20.0), atol=1e-3)
    noisy = image_errors(x + 0.3 * torch.randn_like(x), x)
    assert torch.all(noisy["ssim"] < shifted["ssim"])


@pytest.fixture(scope="module")
def extractor_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fid") / "classifier.pt"
    save_classifier(SmallClassifier(width=8, feature_dim=32), path)
    return path


def test_fid_is_zero_for_identical_sets_and_grows_with_noise(extractor_path):
    data = digits(image_size=32)
    data.setup()
    x = torch.stack([data.splits["train"][i][0] for i in range(400)])
    assert abs(frechet_distance(x, x.clone(), weights_path=str(extractor_path))) < 1e-6
    fids = [frechet_distance((x + s * torch.randn_like(x)).clamp(-1, 1), x, weights_path=str(extractor_path))
            for s in (0.1, 0.3, 0.6)]
    assert 0 < fids[0] < fids[1] < fids[2]


def test_fid_without_its_extractor_names_the_command(tmp_path):
    x = torch.zeros(4, 1, 32, 32)
    with pytest.raises(FileNotFoundError, match="diffrep.evaluation.extractor"):
        frechet_distance(x, x, weights_path=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown FID extractor"):
        frechet_distance(x, x, extractor="resnet", weights_path=str(tmp_path / "missing.pt"))


def test_to_uint8_rgb_maps_the_range_ends_and_repeats_grey():
    out = to_uint8_rgb(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3))
    assert out.shape == (1, 3, 1, 3) and out.dtype == torch.uint8
    assert out[0, :, 0].tolist() == [[0, 128, 255]] * 3


def test_the_extractor_trains_to_high_accuracy_and_reloads(tmp_path):
    model, accuracy = train_classifier(digits(image_size=32, batch_size=32), epochs=3)
    assert accuracy > 0.8
    save_classifier(model, tmp_path / "c.pt")
    x = torch.rand(3, 1, 32, 32)
    assert torch.allclose(load_classifier(tmp_path / "c.pt").features(x), model.features(x))


def test_report_groups_metrics_and_round_trips(tmp_path):
    report = build_report(
        "PDAE",
        "FashionMNIST",
        "run/last.ckpt",
        {"probe/linear_accuracy": 0.79, "recon/inverted_mse": 7e-4, "fid/samples": 12.5, "test/loss": 0.1},
    )
    md = to_markdown(report)
    assert md.index("## Representation") < md.index("## Reconstruction") < md.index("## FID") < md.index("## Objective")
    assert "| linear_accuracy | 0.7900 |" in md and "| inverted_mse | 0.0007 |" in md
    json_path, md_path = write_report(report, tmp_path / "last.report")
    assert json.loads(json_path.read_text())["metrics"]["fid/samples"] == 12.5 and md_path.read_text() == md
    table = comparison(
        [report, build_report("PCA", "FashionMNIST", None, {"probe/linear_accuracy": 0.8})],
        {"probe/linear_accuracy": "linear", "fid/samples": "FID"},
    )
    assert table.splitlines()[2] == "| PDAE | 0.7900 | 12.5000 |"
    assert table.splitlines()[3] == "| PCA | 0.8000 | - |"
    percent = comparison(
        [report],
        {"probe/linear_accuracy": "linear", "fid/samples": "FID"},
        formats={"probe/linear_accuracy": lambda v: f"{100 * v:.1f}%"},
    )
    assert percent.splitlines()[2] == "| PDAE | 79.0% | 12.5000 |"


class _Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return torch.full((2,), float(i)), torch.tensor(i)


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mapped = map_items(
        lambda x, y: {"x": x[:, 0] * 10, "y": y, "rank": torch.full_like(y, rank)}, _Toy(), 5, 2, torch.device("cpu")
    )
    generated = generate_items(lambda n, g: torch.rand(n, generator=g), 6, 2, torch.device("cpu"), seed=3)
    torch.save({"mapped": mapped, "generated": generated}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_work_split_over_two_ranks_is_gathered_in_order(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(2, port, str(tmp_path)), nprocs=2)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for res in results:
        assert res["mapped"]["x"].tolist() == [0, 10, 20, 30, 40] and res["mapped"]["y"].tolist() == [0, 1, 2, 3, 4]
        assert res["mapped"]["rank"].tolist() == [0, 1, 0, 1, 0]  # each item computed once, by its rank
    assert torch.equal(results[0]["generated"], results[1]["generated"])
    assert len(set(results[0]["generated"].tolist())) == 6  # the ranks drew different items
