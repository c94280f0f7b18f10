"""benchmarks/claims.py end to end on the smallest setting: the time-sampler experiment trains both
DRL runs through `diffrep fit`, measures both codes and writes its record and figure."""

import importlib.util
import json
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # as when run as a script: its neighbours import by name
spec = importlib.util.spec_from_file_location("claims", REPO / "benchmarks/claims.py")
claims = importlib.util.module_from_spec(spec)
sys.modules["claims"] = claims
spec.loader.exec_module(claims)


@pytest.mark.slow
def test_the_time_sampler_experiment_runs_both_samplers_and_records_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "time-sampler", "--data", "digits",
                 "--steps", "6", "--decode-steps", "5", "--out", str(tmp_path / "runs")])
    record = json.loads((tmp_path / "claims_time_sampler_digits.json").read_text())
    assert record["steps"] == 6 and record["latent_dim"] == 2 and set(record["results"]) == {"uniform", "high_noise"}
    for sampler, result in record["results"].items():
        assert (tmp_path / "runs" / sampler / "checkpoints/last.ckpt").is_file()
        assert result["mse_random_xT"] > 10 * result["mse_inverted_xT"], result  # inversion is near-exact
    figure = tmp_path / "claims_time_sampler_digits.png"
    assert figure.stat().st_size > 10_000
    figure.unlink()  # redrawn from the record and its panels alone, nothing trained
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "time-sampler", "--data", "digits",
                 "--replot", "--out", str(tmp_path / "nowhere")])
    assert figure.stat().st_size > 10_000 and not (tmp_path / "nowhere").exists()
    # a finished run is kept; one asked for more steps than its last.ckpt holds continues from it
    last = tmp_path / "runs/uniform/checkpoints/last.ckpt"
    before = last.stat().st_mtime_ns
    assert claims.train("digits", "uniform", 6, tmp_path / "runs/uniform") == last and last.stat().st_mtime_ns == before
    claims.train("digits", "uniform", 8, tmp_path / "runs/uniform")
    assert claims.load_step(last) == 8
    # --seeds 2 adds training seed 1 of both samplers; seed 0 is read from the record, not trained again
    record_before = json.loads((tmp_path / "claims_time_sampler_digits.json").read_text())
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "time-sampler", "--data", "digits",
                 "--steps", "6", "--decode-steps", "5", "--out", str(tmp_path / "runs"), "--seeds", "2"])
    record = json.loads((tmp_path / "claims_time_sampler_digits.json").read_text())
    assert record["results"] == record_before["results"] and claims.load_step(last) == 8  # seed 0 untouched
    for sampler in claims.SAMPLERS:
        assert claims.load_step(tmp_path / "runs" / f"{sampler}_seed1/checkpoints/last.ckpt") == 6
        assert set(record["seeds"][sampler]) == {"0", "1"}
        assert record["seeds"][sampler]["1"]["knn20_accuracy"] != record["seeds"][sampler]["0"]["knn20_accuracy"]
    assert record["margins"]["knn20_accuracy"]["spread"] is not None


def test_the_time_samplers_are_compared_over_training_seeds_against_their_spread():
    """Each measure's mean and std over seeds per sampler, and high_noise minus uniform judged against the
    spread (claim 5's rule): a wide gap is "ahead", a gap inside the seeds' scatter is not, one seed no verdict."""
    def run(knn, mse):
        return {"knn20_accuracy": knn, "linear_accuracy": knn, "mse_random_xT": mse, "ssim_random_xT": 0.5}

    seeds = {"uniform": {"0": run(0.34, 0.08), "1": run(0.36, 0.06), "2": run(0.32, 0.10)},
             "high_noise": {"0": run(0.66, 0.05), "1": run(0.60, 0.09), "2": run(0.63, 0.07)}}
    record = claims.time_sampler_over_seeds(seeds)
    knn = record["over_seeds"]["high_noise"]["knn20_accuracy"]
    assert knn["mean"] == pytest.approx(0.63) and knn["seed_std"] == pytest.approx(0.03) and len(knn["seeds"]) == 3
    assert record["margins"]["knn20_accuracy"]["verdict"] == "ahead"
    assert record["margins"]["knn20_accuracy"]["margin"] == pytest.approx(0.29)
    assert record["margins"]["mse_random_xT"]["verdict"] == "within the spread"  # -0.01 against a 0.028 spread
    one = claims.time_sampler_over_seeds({name: {"0": runs["0"]} for name, runs in seeds.items()})
    assert one["margins"]["knn20_accuracy"]["verdict"] == "one training seed: no verdict"


def test_the_2d_code_knn_reads_the_class_structure_and_not_shuffled_labels():
    import torch

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    y, yt = torch.arange(600) % 3, torch.arange(300) % 3
    x, xt = centres[y] + torch.randn(600, 2, generator=g), centres[yt] + torch.randn(300, 2, generator=g)
    assert claims.knn_euclidean(x, y, xt, yt) > 0.97
    random_y, random_yt = torch.randint(0, 3, (600,), generator=g), torch.randint(0, 3, (300,), generator=g)
    assert abs(claims.knn_euclidean(x, random_y, xt, random_yt) - 1 / 3) < 0.1  # labels unrelated to the codes


def test_the_downstream_record_reads_compare_semis_seeds_and_judges_margins_against_their_spread(tmp_path):
    """Claim 5's figure and record from a results.json in compare's layout: the named entries in
    order, missing ones left out; each cell the mean and std over training seeds of the label-draw means;
    a margin is "ahead" only when it exceeds the spread of the difference."""
    def report(svm100: float, linear: float = 0.8) -> dict:
        return {"metrics": {"downstream/svm_100_mean": svm100, "downstream/svm_100_std": 0.01,
                            "downstream/svm_1000_mean": 0.8, "downstream/svm_1000_std": 0.002,
                            "semi/poisson_10_mean": 0.7, "semi/poisson_10_std": 0.02, "probe/linear_accuracy": linear}}

    def entry(*svm100: float, linear: tuple[float, ...] = (0.8, 0.8, 0.8)) -> dict:
        return {"report": report(svm100[0], linear[0]),
                "seeds": {str(k): {"report": report(v, linear[k])} for k, v in enumerate(svm100) if k}}

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"settings": {"steps": 1000, "semi": True}, "entries": {
        "VAE": entry(0.70, 0.72, 0.74, linear=(0.80, 0.84, 0.82)), "pixels": entry(0.6),
        "VDRL": entry(0.76, 0.77, 0.78, linear=(0.81, 0.83, 0.85)), "SimCLR": entry(0.5, linear=(0.7,))}}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "downstream", "--results",
                 str(results)])
    record = json.loads((tmp_path / "claims_downstream.json").read_text())
    assert list(record["rows"]) == ["VDRL", "VAE", "SimCLR"]  # the claim's entries in the paper's order, no pixels
    vae = record["rows"]["VAE"]["SVM, 100 labels"]
    assert vae["seeds"] == [0.70, 0.72, 0.74] and vae["mean"] == pytest.approx(0.72)
    assert vae["seed_std"] == pytest.approx(0.02) and vae["draw_std"] == pytest.approx(0.01)
    assert record["rows"]["VAE"]["MLP probe, all labels"] is None  # not in these reports
    assert record["training_seeds"] == {"VDRL": 3, "VAE": 3, "SimCLR": 1}
    one_seed = record["margins"]["VDRL - SimCLR"]["SVM, 100 labels"]  # +0.27, but SimCLR's seed std is no spread
    assert one_seed["margin"] == pytest.approx(0.27) and one_seed["spread"] is None
    assert one_seed["verdict"] == "one training seed: no verdict"
    svm = record["margins"]["VDRL - VAE"]["SVM, 100 labels"]  # +0.05 against sqrt(0.01^2 + 0.02^2) = 0.022
    assert svm["margin"] == pytest.approx(0.05) and svm["spread"] == pytest.approx(0.0224, abs=1e-4)
    assert svm["verdict"] == "ahead"
    linear = record["margins"]["VDRL - VAE"]["linear probe, all labels"]  # +0.01 against a spread of 0.028
    assert linear["verdict"] == "within the spread"
    assert (tmp_path / "claims_downstream.png").stat().st_size > 10_000
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "downstream", "--replot"])
    assert json.loads((tmp_path / "claims_downstream.json").read_text()) == record
    tables = claims.downstream_tables(record)
    assert "| VAE | 3 | 82.0 ± 2.0 | - | 72.0 ± 2.0 | 80.0 ± 0.0 | 70.0 ± 0.0 |" in tables
    assert "| VDRL - VAE | +1.0 ± 2.8, within the spread | - | +5.0 ± 2.2, ahead |" in tables
    no_verdict = "one training seed: no verdict"
    assert f"| VDRL - SimCLR | +13.0, {no_verdict} | - | +27.0, {no_verdict} |" in tables


def test_the_time_code_probes_read_every_t_and_the_joined_code(tmp_path, tiny_drl_checkpoint):
    """Claim 4's probes on a tiny time-dependent DRL: one row per t of the grid and the joined code,
    validation and test, Poisson learning among them; a static code is refused."""
    from conftest import digits, make_drl, quiet_trainer

    model = make_drl(code={"time_dependent": True})
    trainer = quiet_trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=digits(batch_size=16, subset=48))
    ckpt = tmp_path / "time.ckpt"
    trainer.save_checkpoint(ckpt)
    claims.main(["--results-dir", str(tmp_path), "time-code", "--ckpt", str(ckpt), "--data", "digits"])
    record = json.loads((tmp_path / "claims_time_code.json").read_text())
    assert list(record["rows"]) == [f"t = {t}" for t in claims.TIME_GRID] + ["joined (0.1 ... 0.9)"]
    assert record["step"] == 3 and set(record["best_t_on_val"]) == {"linear", "supervised_10",
                                                                       "label_spreading_10", "poisson_10"}
    for row in record["rows"].values():
        assert all(0 <= row[f"{split}/{m}"] <= 1.0 for split in ("val", "test")
                   for m in ("linear", "supervised_10", "label_spreading_10", "poisson_10")), row
    # each row probes the codes at its own t (3 steps teach too little for a bound to tell the codes from
    # random ones, so one row's number is computed again)
    from conftest import linear_probe_again

    from diffrep.datamodules import DigitsDataModule
    from diffrep.lightning_modules.loading import load_trained

    dm = DigitsDataModule(image_size=16)
    dm.setup()
    again = linear_probe_again(claims.CodesAt(load_trained(ckpt), (0.5,)), dm, "val", 10000, 5000)
    assert record["rows"]["t = 0.5"]["val/linear"] == pytest.approx(again)
    with pytest.raises(SystemExit, match="not a time-dependent"):
        claims.main(["--results-dir", str(tmp_path), "time-code", "--ckpt", str(tiny_drl_checkpoint), "--data",
                     "digits"])


def test_the_efficiency_comparison_puts_pdae_on_one_clock_both_ways(tmp_path):
    """Claim 2: PDAE's points shifted back by its DPM's minutes ("own minutes") and as recorded (the
    DPM's minutes added), against Diff-AE's, each mark reading the last point taken by then."""
    def point(minutes: float, step: int, linear: float, mse: float | None = None) -> dict:
        p = {"minutes": minutes, "step": step, "test/linear": linear, "test/semi_10_label_spreading": linear - 0.1}
        return p if mse is None else {**p, "test/recon_mse": mse, "test/recon_ssim": 0.5, "test/rfid": 100 * mse}

    entries = {"DPM features": {"points": [point(1.0, 200, 0.7), point(10.0, 2000, 0.8)]},
               "PDAE": {"points": [point(11.0, 100, 0.75, 0.02), point(12.0, 200, 0.77, 0.01),
                                   point(14.0, 400, 0.79, 0.005), point(18.0, 800, 0.8, 0.004)]},
               "Diff-AE": {"points": [point(1.0, 150, 0.7, 0.03), point(2.0, 300, 0.6, 0.02),
                                      point(4.0, 600, 0.62, 0.01), point(8.0, 1200, 0.63, 0.008)]}}
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"settings": {"minutes": 4}, "entries": entries}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "efficiency", "--results",
                 str(results)])
    record = json.loads((tmp_path / "claims_efficiency.json").read_text())
    assert record["dpm_minutes"] == 10.0
    assert [p["minutes"] for p in record["curves"]["PDAE, own minutes"]] == [1.0, 2.0, 4.0, 8.0]
    assert list(record["rows"]) == ["1", "2", "4", "8", "15"]  # marks up to the longest curve (18 minutes)
    at_2, at_4, at_8, at_15 = (record["rows"][m] for m in ("2", "4", "8", "15"))
    assert at_2["Diff-AE"]["step"] == 300 and at_2["PDAE, own minutes"]["step"] == 200
    assert at_2["PDAE, DPM's minutes added"] is None  # PDAE's clock starts at the DPM's 10 minutes
    assert at_4["PDAE, own minutes"]["test/recon_mse"] == 0.005 and at_4["Diff-AE"]["test/rfid"] == 1.0
    assert at_8["PDAE, DPM's minutes added"] is None and at_8["Diff-AE"]["step"] == 1200
    assert at_15["PDAE, DPM's minutes added"]["step"] == 400  # the last point by then (14 minutes)
    assert at_15["Diff-AE"] is None and at_15["PDAE, own minutes"] is None  # both ended at 8 minutes
    assert (tmp_path / "claims_efficiency.png").stat().st_size > 10_000
    assert set(at_2) == {"Diff-AE", "PDAE, own minutes", "PDAE, DPM's minutes added"}  # no control run yet
    # the equal-encoder controls join when they have run, PDAE's on its own minutes as well
    entries[claims.DIFFAE_CONV] = {"points": [point(1.0, 120, 0.72, 0.03), point(2.0, 240, 0.74, 0.02)]}
    entries[claims.PDAE_HALFUNET] = {"points": [point(11.0, 90, 0.71, 0.02), point(12.0, 180, 0.73, 0.01)]}
    results.write_text(json.dumps({"settings": {"minutes": 4}, "entries": entries}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "efficiency", "--results",
                 str(results)])
    at_2 = json.loads((tmp_path / "claims_efficiency.json").read_text())["rows"]["2"]
    assert at_2[claims.DIFFAE_CONV]["step"] == 240 and at_2[f"{claims.PDAE_HALFUNET}, own minutes"]["step"] == 180
    assert record["spread"] == {} and record["seed_curves"] == {}  # one training seed each so far
    # training seeds 1-2, shorter than seed 0's run: PDAE's own minutes by its own seed's DPM, the spread
    # over the seeds that trained until each mark
    entries["DPM features"]["seeds"] = {"1": {"points": [point(9.0, 1800, 0.8)]},
                                        "2": {"points": [point(11.0, 2200, 0.8)]}}
    entries["PDAE"]["seeds"] = {"1": {"points": [point(10.0, 100, 0.77, 0.02), point(11.0, 200, 0.79, 0.01)]},
                                "2": {"points": [point(12.0, 100, 0.73, 0.02), point(13.0, 200, 0.75, 0.01)]}}
    results.write_text(json.dumps({"settings": {"minutes": 4}, "entries": entries}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "efficiency", "--results",
                 str(results)])
    record = json.loads((tmp_path / "claims_efficiency.json").read_text())
    assert [p["minutes"] for p in record["seed_curves"]["PDAE, own minutes"]["1"]] == [1.0, 2.0]
    own = record["spread"]["2"]["PDAE, own minutes"]
    assert own["seeds"] == [0, 1, 2] and own["test/linear"] == pytest.approx([0.77, 0.02])  # 0.77, 0.79, 0.75
    assert "4" not in record["spread"]  # seeds 1-2 ended at 2 of their own minutes
    assert record["rows"]["2"]["PDAE, own minutes"]["step"] == 200  # the rows stay seed 0's
    del entries["Diff-AE"]
    results.write_text(json.dumps({"settings": {}, "entries": entries}))
    with pytest.raises(SystemExit, match="no 'Diff-AE' entry"):
        claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "efficiency", "--results",
                     str(results)])


def test_the_laplacenet_curve_joins_resumed_csv_versions_by_epoch(tmp_path):
    """Validation accuracy, minutes and pseudo-label accuracy per epoch, from every logger version a
    resumed run left (Lightning's CSV rows hold one metric each)."""
    for version, rows in (("version_0", [(0, "val/accuracy", 0.3), (0, "time/fit_minutes", 0.5)]),
                          ("version_1", [(1, "pseudo/accuracy", 0.6), (1, "val/accuracy", 0.4),
                                         (1, "time/fit_minutes", 2.0), ("", "train/loss", 1.0)])):
        folder = tmp_path / "lightning_logs" / version
        folder.mkdir(parents=True)
        keys = ["epoch", "step", "val/accuracy", "time/fit_minutes", "pseudo/accuracy", "train/loss"]
        lines = [",".join(keys)] + [",".join(str(epoch) if k == "epoch" else "0" if k == "step" else
                                             (str(value) if k == key else "") for k in keys)
                                    for epoch, key, value in rows]
        (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    assert claims.laplacenet_curve(tmp_path) == [
        {"epoch": 0, "val_accuracy": 0.3, "minutes": 0.5},
        {"epoch": 1, "pseudo_accuracy": 0.6, "val_accuracy": 0.4, "minutes": 2.0}]
    assert claims.slug("DRL E(x0, t)") == "drl_e_x0_t" and len(set(map(claims.slug, claims.LAPLACENET_STARTS))) == 4


def test_laplacenet_table_spreads_over_draws_and_seeds_and_ranks_starts_on_validation_only():
    """Mean +- sample std over every run of a start, each seed's mean over its draws, and the starts that get
    more seeds ranked by final validation accuracy: a start best on test but worse on validation is not chosen."""
    def run(entry, draw, seed, test, val):
        return {"entry": entry, "draw": draw, "seed": seed, "test_accuracy": test,
                "curve": [{"epoch": 0, "val_accuracy": 0.1}, {"epoch": 1, "val_accuracy": val}]}

    results = [run("a", 0, 0, 0.70, 0.80), run("a", 1, 0, 0.74, 0.82), run("a", 0, 1, 0.72, 0.81),
               run("b", 0, 0, 0.90, 0.60), run("b", 1, 0, 0.92, 0.62), run("c", 0, 0, 0.50, 0.70)]
    table = claims.laplacenet_table(results)
    assert table["a"]["mean"] == pytest.approx(0.72) and table["a"]["std"] == pytest.approx(0.02)
    assert table["a"]["seed_means"] == {"0": pytest.approx(0.72), "1": pytest.approx(0.72)}
    assert table["a"]["runs"] == 3 and table["a"]["draws"] == [0, 1] and table["a"]["seeds"] == [0, 1]
    assert table["c"]["std"] == 0.0 and table["b"]["mean_last_val"] == pytest.approx(0.61)
    assert claims.top_on_validation(results, 2) == ["a", "c"]


def test_laplacenet_report_tabulates_finished_runs_pairs_them_and_lists_the_rest(tmp_path, monkeypatch):
    """--report trains nothing: finished runs are read, the unfinished listed as pending (the further seeds
    too, while the first round that ranks the starts is incomplete), and the paired difference is taken
    over the same (draw, seed) only."""
    monkeypatch.setattr(claims, "REPO", tmp_path)
    finished = {("DRL E(x0, t)", 0): 0.75, ("DRL E(x0, t)", 1): 0.70, ("random init", 0): 0.72,
                ("random init", 1): 0.69, ("random init", 2): 0.10}
    for (entry, draw), acc in finished.items():
        run = tmp_path / "runs/claims_laplacenet" / f"{claims.slug(entry)}_draw{draw}_seed0_e12"
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({"entry": entry, "draw": draw, "seed": 0, "test_accuracy": acc,
                                                     "curve": [{"epoch": 0, "val_accuracy": acc}]}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "laplacenet", "--report",
                 "--entries", "DRL E(x0, t)", "random init", "--draws", "0", "1", "2"])
    record = json.loads((tmp_path / "claims_laplacenet.json").read_text())
    assert record["table"]["DRL E(x0, t)"]["runs"] == 2 and record["table"]["random init"]["runs"] == 3
    pair = record["paired"]["random init"]
    assert pair["pairs"] == 2 and pair["mean"] == pytest.approx(0.02) and pair["std"] == pytest.approx(0.0141421, 1e-4)
    assert record["pending"][0] == ["DRL E(x0, t)", 2, 0] and "--top-seeds" in record["pending"][1]
    assert record["top_on_validation"] == [] and (tmp_path / "claims_laplacenet.png").is_file()


def test_laplacenet_keeps_the_committed_runs_and_spreads_a_draw_over_training_seeds(tmp_path, monkeypatch):
    """A call that adds seeds reads the committed record's runs at the same budget (runs/ is not committed)
    and writes them back with its own; at a draw run at several training seeds each start with 2+ gets its
    spread over seeds and E(x0, t)'s difference paired by seed; a record of another budget is not mixed in."""
    monkeypatch.setattr(claims, "REPO", tmp_path)

    def run(entry, draw, seed, acc):
        return {"entry": entry, "draw": draw, "seed": seed, "test_accuracy": acc,
                "curve": [{"epoch": 0, "val_accuracy": acc}]}

    static = "DRL static code (the recipe's encoder)"
    stored = [run("DRL E(x0, t)", 0, 0, 0.70), run("DRL E(x0, t)", 1, 0, 0.72), run(static, 0, 0, 0.75),
              run(static, 1, 0, 0.74), run(static, 0, 1, 0.73), run(static, 0, 2, 0.74), run("random init", 0, 0, 0.6),
              run("autoencoder", 0, 0, 0.76), run("autoencoder", 0, 1, 0.72)]
    budget = {"encoder_steps": 3000, "max_epochs": 12, "minutes": None, "top_on_validation": [static]}
    (tmp_path / "claims_laplacenet.json").write_text(json.dumps({**budget, "runs": stored}))
    for seed, acc in ((1, 0.71), (2, 0.66)):  # this call's new runs
        folder = tmp_path / "runs/claims_laplacenet" / f"drl_e_x0_t_draw0_seed{seed}_e12"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(run("DRL E(x0, t)", 0, seed, acc)))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "laplacenet", "--report",
                 "--entries", "DRL E(x0, t)", "--draws", "0", "--seeds", "0", "1", "2", "--top-seeds"])
    record = json.loads((tmp_path / "claims_laplacenet.json").read_text())
    assert len(record["runs"]) == 11 and record["seeds"] == [0, 1, 2] and record["draws"] == [0, 1]
    assert record["table"]["DRL E(x0, t)"]["runs"] == 4 and record["top_on_validation"] == [static]
    assert record["paired"][static]["pairs"] == 2 and record["paired"][static]["mean"] == pytest.approx(-0.035)
    view = record["over_seeds"]["0"]
    assert set(view["table"]) == {"DRL E(x0, t)", static, "autoencoder"}  # random init: one seed at draw 0
    assert view["paired"]["autoencoder"]["differences"] == pytest.approx([-0.06, -0.01])  # the seeds both ran
    assert view["table"]["DRL E(x0, t)"]["mean"] == pytest.approx(0.69)
    assert view["table"]["DRL E(x0, t)"]["std"] == pytest.approx(0.0264575, 1e-4)
    assert view["paired"][static]["differences"] == pytest.approx([-0.05, -0.02, -0.08])
    assert "1" not in record["over_seeds"]  # draw 1 has one seed
    (tmp_path / "claims_laplacenet.json").write_text(json.dumps({**budget, "max_epochs": 20, "runs": stored}))
    claims.main(["--results-dir", str(tmp_path), "--figure-dir", str(tmp_path), "laplacenet", "--report",
                 "--entries", "DRL E(x0, t)", "--draws", "0", "--seeds", "1", "2", "--top-seeds"])
    assert len(json.loads((tmp_path / "claims_laplacenet.json").read_text())["runs"]) == 2


def test_code_alone_adds_an_entrys_reconstructions_and_keeps_the_earlier_ones(tiny_pdae_checkpoint, tmp_path):
    import shutil

    run = tmp_path / "claim2/runs/pdae/checkpoints"
    run.mkdir(parents=True)
    shutil.copy(tiny_pdae_checkpoint, run / "last.ckpt")
    (tmp_path / "claims_efficiency_code_alone.json").write_text(json.dumps({"Diff-AE": {"random_mse": 0.03}}))
    claims.main(["--results-dir", str(tmp_path), "code-alone", "--entries", "PDAE", "--runs", str(tmp_path / "claim2"),
                 "--num-images", "8", "--steps", "3"])
    record = json.loads((tmp_path / "claims_efficiency_code_alone.json").read_text())
    assert record["Diff-AE"] == {"random_mse": 0.03}  # measured before, kept
    pdae = record["PDAE"]
    assert pdae["step"] == claims.load_step(run / "last.ckpt") > 0
    assert 0 < pdae["inverted_mse"] < pdae["random_mse"]  # its own inverted x_T reconstructs best
    with pytest.raises(SystemExit, match="no checkpoint at"):
        claims.main(["--results-dir", str(tmp_path), "code-alone", "--entries", "Diff-AE", "--runs",
                     str(tmp_path / "claim2")])


def test_claim4_seeds_read_each_seed_at_the_mark_and_judge_the_margin_against_its_spread():
    """Each side at 15 minutes: every seed's last point by then (a seed that stopped earlier is left out);
    E(x0, t) - static with the seed stds added in quadrature, and the verdict of claim 5's rule."""
    def point(minutes, linear, sup, ls):
        return {"minutes": minutes, "test/linear": linear, "test/semi_10_supervised": sup,
                "test/semi_10_label_spreading": ls}

    def entry(*finals, stopped_early=None):
        runs = [[point(2, 0.5, 0.4, 0.3), point(15.0, *final), point(20, 0.99, 0.99, 0.99)] for final in finals]
        seeds = {str(k): {"points": r} for k, r in enumerate(runs[1:], start=1)}
        if stopped_early:
            seeds[str(len(runs))] = {"points": [point(2, *stopped_early)]}
        return {"points": runs[0], "seeds": seeds}

    results = {"settings": {}, "entries": {
        "DRL (recipe), step clock": entry((0.80, 0.70, 0.70), (0.82, 0.70, 0.72), (0.81, 0.70, 0.74)),
        "DRL, time-dependent WRN": entry((0.86, 0.60, 0.72), (0.84, 0.62, 0.70), (0.85, 0.64, 0.71),
                                         stopped_early=(0.1, 0.1, 0.1))}}
    record = claims.time_code_seeds_record(results, "stored.json", minutes=15.0)
    static, timed = record["rows"]["static"], record["rows"]["time-dependent"]
    assert static["linear"]["seeds"] == [0.80, 0.82, 0.81] and timed["linear"]["seeds"] == [0.86, 0.84, 0.85]
    linear = record["margins"]["linear"]
    assert linear["margin"] == pytest.approx(0.04) and linear["spread"] == pytest.approx((0.01 ** 2 * 2) ** 0.5)
    assert linear["verdict"] == "ahead"
    assert record["margins"]["10/class sup."]["verdict"] == "behind"
    assert record["margins"]["10/class LS"]["verdict"] == "within the spread"
    table = claims.time_code_seeds_table(record)
    assert "| DRL, time-dependent WRN | 3 | 85.0 ± 1.0 | 62.0 ± 2.0 | 71.0 ± 1.0 |" in table
    assert "+4.0 ± 1.4, ahead" in table


def test_claim4_seeds_with_one_seed_on_a_side_give_no_verdict():
    one = {"points": [{"minutes": 15.0, "test/linear": 0.8, "test/semi_10_supervised": 0.7,
                       "test/semi_10_label_spreading": 0.7}]}
    results = {"settings": {}, "entries": {"DRL (recipe), step clock": one, "DRL, time-dependent WRN": one}}
    record = claims.time_code_seeds_record(results, "stored.json", minutes=15.0)
    assert record["margins"]["linear"]["verdict"] == "one training seed: no verdict"
    with pytest.raises(SystemExit, match="time_to_accuracy.py"):
        claims.time_code_seeds_record({"settings": {}, "entries": {}}, "stored.json", minutes=15.0)
