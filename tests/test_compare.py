"""benchmarks/compare.py's bookkeeping: probe curves from the CSV log, the resumable results file."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # as when run as a script: its neighbours import by name
spec = importlib.util.spec_from_file_location("compare", REPO / "benchmarks/compare.py")
compare = importlib.util.module_from_spec(spec)
sys.modules["compare"] = compare  # dataclasses look their module up while the class is built
spec.loader.exec_module(compare)


def report(**metrics: float) -> dict:
    return {"method": "x", "data": "d", "checkpoint": None, "metrics": metrics}


def test_probe_curve_reads_only_the_rows_that_hold_a_probe(tmp_path):
    log = tmp_path / "csv/fit/metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,probe/linear_accuracy,step,train/loss\n0,,24,0.5\n0,0.61,250,\n0,,274,0.4\n1,0.7,500,\n")
    assert compare.probe_curve(tmp_path) == [[250, 0.61], [500, 0.7]]
    assert compare.probe_curve(tmp_path / "missing") == []


def test_results_keep_every_entry_in_order_with_missing_metrics_as_dashes(tmp_path):
    (tmp_path / "figures").mkdir()
    done = {  # inserted in the opposite order to ENTRIES
        "PDAE": {"report": report(**{"probe/linear_accuracy": 0.9, "recon/inverted_mse": 0.001}), "steps": 1000,
                 "fit_s": 1200, "test_s": 300, "probe_curve": [[250, 0.6], [1000, 0.9]]},
        "VAE": {"report": report(**{"probe/linear_accuracy": 0.8}), "steps": 1000, "fit_s": 120, "test_s": 30,
                "probe_curve": [[250, 0.5], [1000, 0.8]]},
    }
    text = compare.write_results(tmp_path, {"quick": False, "steps": 1000}, done)
    rows = [line for line in text.splitlines() if line.startswith("| PDAE") or line.startswith("| VAE")]
    assert rows[1].startswith("| PDAE | 90.0% | - |") and "| 0.0010 |" in rows[1]
    assert rows[0].startswith("| VAE | 80.0% | - |")  # ENTRIES order, not insertion order
    assert "| VAE | 1000 | 2.0 | 0.5 |" in text and "| PDAE | 60.0% | 90.0% |" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"] == {"quick": False, "steps": 1000} and set(saved["entries"]) == {"VAE", "PDAE"}
    assert (tmp_path / "figures/probe_curve.png").stat().st_size > 1000


def test_budgets_equal_steps_for_learners_and_a_multiple_of_the_config_for_the_dpms():
    by_name = {e.name: e for e in compare.ALL_ENTRIES}
    assert compare.fit_steps(by_name["PDAE, 512-d code"], quick=False, steps=1000) == 1000
    assert compare.fit_steps(by_name["DPM (stage 1 of PDAE)"], quick=False, steps=1000) == 1500
    assert compare.fit_steps(by_name["DPM, 2x steps"], quick=False, steps=1000) == 3000
    assert compare.fit_steps(by_name["DPM, 2x steps"], quick=True, steps=60) == 120


def test_diagnostics_use_only_runs_made_before_them_and_pdae_ones_change_one_setting():
    run_dirs_so_far = set()
    for entry in compare.ALL_ENTRIES:
        if entry.continues:
            assert entry.continues in run_dirs_so_far
        for flag, value in zip(entry.fit_args[::2], entry.fit_args[1::2], strict=True):
            if flag == "--model.init_args.dpm_checkpoint":
                assert value.split("/checkpoints/")[0] in run_dirs_so_far
        run_dirs_so_far.add(entry.run_dir)
    assert [len(e.fit_args) for e in compare.DIAGNOSTICS if e.config == "configs/pdae.yaml"] == [2, 2]


def test_seeds_are_averaged_and_their_spread_tabled(tmp_path):
    (tmp_path / "figures").mkdir()
    run = {"steps": 1000, "fit_s": 60, "test_s": 30, "probe_curve": []}
    done = {"VAE": {**run, "report": report(**{"probe/linear_accuracy": 0.80}),
                    "seeds": {"1": {**run, "report": report(**{"probe/linear_accuracy": 0.82})},
                              "2": {**run, "report": report(**{"probe/linear_accuracy": 0.84})}}},
            "pixels": {**run, "report": report(**{"probe/linear_accuracy": 0.836})},
            "DPM (stage 1 of PDAE)": {**run, "report": report(**{"recon/inverted_mse": 0.001})}}  # no code
    keep = tmp_path / "kept.json"
    text = compare.write_results(tmp_path, {"quick": False, "steps": 1000}, done, keep)
    assert text.count("| VAE | 82.0% |") == 1  # the mean of 80, 82, 84
    assert 'Standard deviation over training seeds ({"VAE": 3}' in text and "| VAE | 2.0% |" in text
    assert "| pixels | 83.6% |" in text
    saved = json.loads(keep.read_text())  # the committed copy holds what the docs quote: mean and std over seeds
    assert saved == json.loads((tmp_path / "results.json").read_text())
    vae = saved["summary"]["VAE"]
    assert vae["seeds"] == 3 and vae["mean"]["probe/linear_accuracy"] == pytest.approx(0.82)
    assert vae["std"]["probe/linear_accuracy"] == pytest.approx(0.02)
    assert saved["summary"]["pixels"] == {"seeds": 1, "mean": {"probe/linear_accuracy": 0.836}, "std": None,
                                          "machines": ["not recorded"]}


def test_the_stored_copy_is_named_after_the_output_folder_and_serves_a_fresh_clone(tmp_path, monkeypatch):
    assert compare.stored_copy(Path("runs/compare_semi")) == REPO / "benchmarks/results/compare_semi.json"
    assert compare.stored_copy(Path("x/semi_seeds")) == REPO / "benchmarks/results/compare_semi_seeds.json"
    out, kept = tmp_path / "runs/compare_mine", tmp_path / "kept/compare_mine.json"
    kept.parent.mkdir()
    run = {"steps": 1000, "fit_s": 60, "test_s": 30, "probe_curve": [],
           "report": report(**{"probe/linear_accuracy": 0.8})}
    kept.write_text(json.dumps({"settings": {"quick": False, "steps": 1000}, "entries": {"VAE": run}}))
    monkeypatch.setattr(compare, "stored_copy", lambda o: kept.parent / f"{o.name}.json")
    monkeypatch.setattr(sys, "argv", ["compare.py", "--table-only", "--out", str(out)])
    compare.main()  # no OUT/results.json: the table is rewritten from the committed copy
    assert "| VAE | 80.0% |" in (out / "results.md").read_text()
    (out / "results.json").unlink()
    calls = []
    monkeypatch.setattr(compare, "run_entry", lambda entry, seed, *a: calls.append((entry.name, seed)) or run)
    extractor = tmp_path / "extractor.pt"  # the standard evaluation's FID weights: only their presence is checked
    extractor.write_bytes(b"weights")
    monkeypatch.setattr(sys, "argv", ["compare.py", "--out", str(out), "--only", "VAE", "autoencoder",
                                      "--extractor", str(extractor)])
    compare.main()  # and a run resumes from it: the finished VAE is skipped
    assert calls == [("autoencoder", 0)]


def test_seed_k_trains_in_its_own_folders_and_reads_its_own_dpm(tmp_path, monkeypatch):
    import argparse

    calls = []

    def fake_diffrep(args, cwd, log):
        calls.append(args)
        run_dir = Path(args[args.index("--trainer.default_root_dir") + 1])
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints/last.report.json").write_text(json.dumps(report(**{"probe/linear_accuracy": 0.5})))
        return 1.0

    monkeypatch.setattr(compare, "diffrep", fake_diffrep)
    args = argparse.Namespace(quick=True, semi=False, precision=None)
    by_name = {e.name: e for e in compare.ALL_ENTRIES}
    record = compare.run_entry(by_name["PDAE"], 1, args, tmp_path, 60, tmp_path / "log")
    fit = calls[0]
    assert fit[fit.index("--model.init_args.dpm_checkpoint") + 1] == "runs/dpm_seed1/checkpoints/last.ckpt"
    assert fit[fit.index("--trainer.default_root_dir") + 1] == str(tmp_path / "runs/pdae_seed1")
    assert fit[fit.index("--seed_everything") + 1] == "1" and record["seed"] == 1
    assert "bf16" in record["machine"]  # the CPU and whether its bf16 is native: which precision the run had
    calls.clear()
    compare.run_entry(by_name["PDAE on the 2x DPM"], 2, args, tmp_path, 60, tmp_path / "log")
    fit = calls[0]
    assert fit[fit.index("--model.init_args.dpm_checkpoint") + 1] == "runs/dpm_2x_seed2/checkpoints/last.ckpt"
    assert fit.count("--model.init_args.dpm_checkpoint") == 1
    calls.clear()
    compare.run_entry(by_name["PDAE"], 0, args, tmp_path, 60, tmp_path / "log")  # seed 0: the config's own DPM
    assert "--model.init_args.dpm_checkpoint" not in calls[0]
    assert "--trainer.precision" not in calls[0]  # each config's own precision unless one is asked for
    calls.clear()
    args.precision = "32-true"
    compare.run_entry(by_name["VAE"], 2, args, tmp_path, 60, tmp_path / "log")
    assert all(call[call.index("--trainer.precision") + 1] == "32-true" for call in calls) and len(calls) == 2


def test_the_headline_table_gives_mean_and_std_over_seeds_in_one_cell(tmp_path):
    (tmp_path / "figures").mkdir()
    run = {"steps": 1000, "fit_s": 60, "test_s": 30, "probe_curve": []}
    metrics = [{"probe/linear_accuracy": a, "downstream/mlp_mean": m} for a, m in ((0.80, 0.81), (0.82, 0.85),
                                                                                   (0.84, 0.83))]
    seeds = {str(k): {**run, "report": report(**metrics[k])} for k in (1, 2)}
    done = {"VAE": {**run, "report": report(**metrics[0]), "seeds": seeds},
            "pixels": {**run, "report": report(**{"probe/linear_accuracy": 0.836})},
            "DPM (stage 1 of PDAE)": {**run, "report": report(**{"recon/inverted_mse": 0.001})}}  # no code
    text = compare.write_results(tmp_path, {"quick": False, "steps": 1000, "semi": True}, done)
    headline = text.split("Mean ± std over training seeds")[1].split("## Wall time")[0]
    assert "| VAE | 3 | 82.0 ± 2.0 | - | - | - | 83.0 ± 2.0 |" in headline
    assert "| pixels | 1 | 83.6 | - | - | - | - |" in headline
    assert "DPM" not in headline


def test_redo_of_one_seed_keeps_the_others_and_a_name_alone_drops_every_seed():
    def finished():
        return {"DPM (stage 1 of PDAE)": {"report": 0, "seeds": {"1": {"report": 1}, "2": {"report": 2}}},
                "DRL, uniform t": {"report": 0}}

    done = finished()
    compare.forget_redone(done, "DPM (stage 1 of PDAE)", ["DPM (stage 1 of PDAE)@2", "DRL@1"])
    assert done["DPM (stage 1 of PDAE)"] == {"report": 0, "seeds": {"1": {"report": 1}}}
    compare.forget_redone(done, "DRL, uniform t", ["DRL@1"])  # DRL's seed 1 never ran: nothing to drop
    assert done["DRL, uniform t"] == {"report": 0}
    for every_seed in ("DPM (stage 1 of PDAE)", "DPM (stage 1 of PDAE)@0"):
        done = finished()
        compare.forget_redone(done, "DPM (stage 1 of PDAE)", [every_seed])
        assert "DPM (stage 1 of PDAE)" not in done and "DRL, uniform t" in done
