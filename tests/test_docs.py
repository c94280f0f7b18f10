"""Every relative link and image in README.md and docs/ points at a file that exists (and at a
heading that exists, for links with an #anchor); the README stays a front door (about 200 lines)."""

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


def broken_links(pages: list[Path]) -> list[str]:
    broken = []
    for page in pages:
        name = page.relative_to(REPO) if page.is_relative_to(REPO) else page.name
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{name}: {target} (no such heading)")
    return broken


def test_every_relative_link_and_image_exists():
    assert len(PAGES) > 5
    assert not broken_links(PAGES)


def test_the_link_check_finds_a_broken_link_and_a_broken_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# A heading, with punctuation (2026)\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading-with-punctuation-2026) ![gone](missing.png) [bad](other.md#nope)\n"
                    "```\n[not a link](inside-code.md)\n```\n[web](https://example.org/x)\n")
    assert broken_links([page]) == ["page.md: missing.png (no such file)", "page.md: other.md#nope (no such heading)"]


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 220, len(lines)
    assert sum(bool(re.search(r"20\d\d-\d\d-\d\d", line)) for line in lines) == 0  # dated history lives in docs/


#: (results file, keys into it, how the docs write it, docs that quote it): a rerun that changes a
#: stored number fails here until the docs follow (issue 40: every quoted number from a stored file)
QUOTED = [
    ("reconstruction.json", ("scores", "pdae, inverted x_T", "mse"), "{:.5f}", ("README.md", "docs/results.md",
                                                                              "docs/claims.md")),
    ("reconstruction.json", ("scores", "pdae, inverted x_T", "ssim"), "{:.3f}", ("README.md", "docs/results.md")),
    ("reconstruction.json", ("scores", "dpm, own inversion", "mse"), "{:.5f}", ("README.md", "docs/results.md",
                                                                              "docs/claims.md")),
    ("reconstruction.json", ("scores", "dpm, own inversion", "ssim"), "{:.3f}", ("README.md", "docs/results.md")),
    ("reconstruction.json", ("scores", "dpm, pdae's x_T", "mse"), "{:.3f}", ("docs/claims.md",)),
    ("reconstruction.json", ("scores", "pdae, random x_T", "mse"), "{:.3f}", ("README.md", "docs/results.md",
                                                                            "docs/claims.md")),
]



def parity_row(part: str, output: str) -> tuple[str, tuple]:
    """(file, keys) of one row of the parity harness's stored table."""
    rows = json.loads((REPO / "benchmarks/results/official_parity.json").read_text())[part]["rows"]
    return "official_parity.json", (part, "rows", [r["output"] for r in rows].index(output), "max_abs_difference")


def short_exponent(value: float) -> str:
    return f"{value:.1e}".replace("e-0", "e-")  # 4.3e-8, as fidelity.md writes the rounding rows


QUOTED += [
    *[(*parity_row(part, output), short_exponent, ("docs/fidelity.md",)) for part, output in (
        ("pdae", "PDAE U-Net eps, 64px, attention [4], 4 heads"), ("diffae", "Diff-AE semantic encoder"),
        ("diffae", "Diff-AE denoiser eps, t = 0, zero code"),
        ("diffae", "Diff-AE last.ckpt: semantic code under the EMA weights"),
        ("diffae", "Diff-AE last.ckpt: eps under the EMA weights"),
        ("diffae", "Diff-AE *_latent last.ckpt through LatentDPM: the base's code"))],
    (*parity_row("drl", "score_sde file: code E(x0, t) under the EMA weights"), "{:.1e}", ("docs/fidelity.md",)),
    (*parity_row("drl", "score_sde file: sigma x score under the EMA weights, relative to 1.1"), "{:.1e}",
     ("docs/fidelity.md",)),
]

def percent(value: float) -> str:
    return f"{100 * value:.1f}"


#: claim 5's tables in docs/claims.md: every cell (mean ± std over training seeds) and every margin with its
#: verdict that the stored record holds
DOWNSTREAM = json.loads((REPO / "benchmarks/results/claims_downstream.json").read_text())


QUOTED += [
    ("claims_pdae_gap.json", ("rows", 5, "mse_dpm"), "{:.3f}", ("docs/claims.md",)),  # t = 700
    ("claims_pdae_gap.json", ("rows", 5, "mse_pdae"), "{:.3f}", ("docs/claims.md",)),
    *[(f"claims_time_sampler_{data}.json", ("results", sampler, "knn20_accuracy"), percent, ("docs/claims.md",))
      for data in ("digits", "fashion_mnist") for sampler in ("uniform", "high_noise")],
    *[("claims_downstream.json", ("rows", entry, label), lambda v: f"{100 * v['mean']:.1f} ± {100 * v['seed_std']:.1f}",
       ("docs/claims.md",)) for entry, cells in DOWNSTREAM["rows"].items() for label, cell in cells.items() if cell],
    *[("claims_downstream.json", ("margins", pair, label),
       lambda m: f"{100 * m['margin']:+.1f} ± {100 * m['spread']:.1f}, {m['verdict']}", ("docs/claims.md",))
      for pair, margins in DOWNSTREAM["margins"].items() for label in margins],
]

QUOTED += [
    ("demo_selection.json", ("dpm_val_inversion_mse", steps), "{:.5f}", ("docs/results.md",))
    for steps in ("1000", "1500")
] + [
    ("demo_selection.json", ("pdae_val_linear_accuracy", lr, steps), percent, ("docs/results.md",))
    for lr in ("0.0003", "0.0006") for steps in ("600", "800", "1000")
]

LAPLACENET_SEEDED = ("DRL E(x0, t)", "DRL static code (the recipe's encoder)", "autoencoder")
QUOTED += [
    *[("claims_laplacenet.json", ("table", entry, "mean"), percent, ("docs/claims.md", "docs/results.md"))
      for entry in ("DRL E(x0, t)", "random init", "DRL static code (the recipe's encoder)", "autoencoder")],
    *[("claims_laplacenet.json", ("paired", entry, "mean"), lambda v: f"{100 * v:+.1f}", ("docs/claims.md",))
      for entry in ("random init", "DRL static code (the recipe's encoder)", "autoencoder")],
    *[("claims_laplacenet.json", ("table", entry, "seed_means", seed), lambda v: f"{100 * v:.1f}",
       ("docs/claims.md", "docs/results.md"))
      for entry in ("DRL static code (the recipe's encoder)", "autoencoder") for seed in ("0", "1")],
    # label draw 0 over training seeds: each start's seeds, mean ± std, and E(x0, t)'s difference paired by seed
    *[("claims_laplacenet.json", ("over_seeds", "0", "table", entry),
       lambda v: " / ".join(map(percent, v["seeds"].values())) + f" | {100 * v['mean']:.1f} ± {100 * v['std']:.1f}%",
       ("docs/claims.md",)) for entry in LAPLACENET_SEEDED],
    *[("claims_laplacenet.json", ("over_seeds", "0", "paired", entry), lambda v: f"{100 * v['mean']:+.1f} ± "
       f"{100 * v['std']:.1f} (" + ", ".join(f"{100 * d:+.1f}" for d in v["differences"]) + ")", ("docs/claims.md",))
      for entry in LAPLACENET_SEEDED[1:]],
]

#: claim 4 on frozen codes: the seeded cells and margins at 15 minutes, and E(x0, t)'s hour-long curve
TIME_CODE = ("DRL, time-dependent WRN", "points")
PROBES = ("linear", "semi_10_supervised", "semi_10_label_spreading")
QUOTED += [
    *[("claims_time_code_seeds.json", ("rows", side, label),
       lambda v: f"{100 * v['mean']:.1f} ± {100 * v['seed_std']:.1f}", ("docs/claims.md", "docs/results.md"))
      for side in ("static", "time-dependent")
      for label in ("linear", "10/class sup.", "10/class LS")],
    *[("claims_time_code_seeds.json", ("margins", label),
       lambda m: f"{100 * m['margin']:+.1f} ± {100 * m['spread']:.1f}, {m['verdict']}", ("docs/claims.md",))
      for label in ("linear", "10/class sup.", "10/class LS")],
    *[("time_to_accuracy_time_to_accuracy_claim4.json", ("entries", *TIME_CODE, index),
       lambda p: " / ".join(percent(p[f"test/{k}"]) for k in PROBES),
       ("docs/claims.md",)) for index in range(1, 8)],  # the points at 2, 4, ... 60 minutes
]

CONTROL = "Diff-AE, PDAE's conv encoder"  # claim 2's equal-encoder control
QUOTED += [
    *[("claims_efficiency.json", ("rows", "60", entry, metric), percent, docs)
      for entry, docs in ((CONTROL, ("docs/claims.md", "docs/results.md")), ("PDAE, own minutes", ("docs/claims.md",)))
      for metric in ("test/linear", "test/semi_10_label_spreading")],
    *[("claims_efficiency.json", ("spread", "15", entry, metric), lambda v: f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}",
       ("docs/claims.md",)) for entry in (CONTROL, "PDAE, own minutes")
      for metric in ("test/linear", "test/semi_10_label_spreading")],
    ("claims_efficiency_code_alone.json", (CONTROL, "random_mse"), "{:.4f}", ("docs/claims.md", "docs/results.md")),
    ("claims_efficiency_code_alone.json", (CONTROL, "random_ssim"), "{:.3f}", ("docs/claims.md",)),
    ("claims_efficiency_code_alone.json", ("PDAE", "random_mse"), "{:.4f}", ("docs/claims.md", "docs/results.md")),
]

QUOTED += [(record, ("methods", method, "entries", entry, "ratio"), "x{:.2f}", ("docs/speed.md",))
           for record in ("official_speed.json", "official_speed-first-run.json")
           for method in ("pdae", "drl", "diffae") for entry in ("diffrep bf16", "diffrep bf16 compile")]
QUOTED += [("official_speed-epyc-earlier.json", ("methods", method, "entries", "diffrep bf16 compile", "ratio"),
            "x{:.2f}", ("docs/speed.md",)) for method in ("pdae", "drl", "diffae")]
QUOTED += [("official_speed_profile.json", ("methods", method, entry, "ms_per_step", group), "{:.0f}",
            ("docs/speed.md",)) for method, entry, group in (
               ("diffae", "diffrep bf16", "attention"), ("diffae", "diffrep fp32", "attention"),
               ("diffae", "diffrep bf16", "dropout mask"), ("diffae", "official fp32", "dropout mask"),
               ("diffae", "official fp32", "all ops"))]

QUOTED += [("official_speed-cpu-avx2.json", ("methods", method, "entries", entry, "ratio"), "x{:.2f}",
            ("docs/speed.md",)) for method in ("pdae", "drl", "diffae")
           for entry in ("diffrep fp32", "diffrep fp32 channels_last", "diffrep fp32 compile")]
QUOTED += [("official_speed_profile-cpu-avx2.json", ("methods", method, entry, group), "{:.0f}", ("docs/speed.md",))
           for method in ("pdae", "drl", "diffae") for entry in ("official fp32", "diffrep fp32")
           for group in ("convolution", "all ops")]
QUOTED += [("official_speed_profile-cpu-avx2.json", ("methods", "diffae", entry, group), "{:.0f}", ("docs/speed.md",))
           for entry in ("official fp32", "diffrep fp32") for group in ("attention", "dropout mask")]

QUOTED += [("step_time_against.json", ("methods", method, key), form, ("docs/speed.md",))
           for method in ("dpm", "pdae", "drl", "diffae")
           for key, form in (("before_ms", "{:.1f}"), ("after_ms", "{:.1f}"), ("after_over_before", "{:.2f}x"))]


def test_quoted_numbers_are_the_stored_ones():
    for name, keys, form, docs in QUOTED:
        value = json.loads((REPO / "benchmarks/results" / name).read_text())
        for key in keys:
            value = value[key]
        text = form(value) if callable(form) else form.format(value)
        for doc in docs:
            assert text in (REPO / doc).read_text(), f"{doc} should quote {text} ({name}: {' / '.join(keys)})"


@pytest.mark.parametrize("doc", ["README.md", "docs/results.md"])
def test_the_readmes_results_table_is_the_stored_seeded_table(doc):
    """The README's headline table (and results.md's copy), row by row, as compare.py draws it from its committed
    record (mean ± std over training seeds): a rerun that moves a number fails here until the docs follow."""
    import importlib
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))  # as when run as a script: its neighbours import by name
    compare = importlib.import_module("compare")
    record = json.loads((REPO / "benchmarks/results/compare_semi_seeds.json").read_text())
    assert record["settings"] == {"quick": False, "steps": 1000, "semi": True, "precision": "32-true"}
    # the entries with all their training seeds run, and those with none to run (pixels, PCA); one whose seeds
    # are still running stays out of the README until it has three
    seeded = {e.name for e in compare.ALL_ENTRIES if compare.takes_seeds(e)}
    done = {name: row for name, row in record["summary"].items() if row["seeds"] >= 3 or name not in seeded}
    rows = compare.headline_table(done, compare.HEADLINE_COLUMNS).splitlines()
    readme = (REPO / doc).read_text().splitlines()
    missing = [row for row in rows if row not in readme]
    assert not missing, f"{doc}'s seeded table should hold these rows of compare_semi_seeds.json: {missing}"
    partial = [name for name in record["summary"] if name not in done]
    assert not [line for line in readme for name in partial if line.startswith(f"| {name} |")], partial
