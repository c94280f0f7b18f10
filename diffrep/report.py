"""The evaluation report of ``diffrep test``: JSON for machines, Markdown for people.

Metric names are grouped by their prefix (``probe/``, ``recon/``, ``fid/``, ``test/``), so a
report reads the same for every method and reports can be set side by side (``comparison``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

SECTIONS = {
    "probe": "Representation (accuracy on the test split)",
    "semi": "Semi-supervised: k labels per class, the rest unlabelled (test accuracy)",
    "downstream": "The DRL paper's protocol: SVMs on n labels, MLP probe (test accuracy)",
    "probe_t": "Time-dependent code E(x0, t): probes per t and joined (test accuracy)",
    "recon": "Reconstruction (pixels in [0, 1])",
    "fid": "FID (lower is better)",
    "test": "Objective",
    "train": "Training objective (last step)",
    "val": "Validation objective",
    "tta": "Accuracy against training minutes",
}


def build_report(method: str, data: str, checkpoint: str | None, metrics: Mapping[str, float],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"method": method, "data": data, "checkpoint": checkpoint,
            "metrics": {k: float(v) for k, v in sorted(metrics.items())}, **(extra or {})}


def _format(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


_MEAN = re.compile(r"^(?P<name>.+)_(?P<k>\d+)_mean$")

#: the few numbers a person compares first, in this order (``headline``)
HEADLINE = {
    "val/loss": "val loss", "probe/linear_accuracy": "linear probe", "probe/few_label_10_mean": "10 labels/class",
    "semi/label_spreading_10_mean": "label spreading (10/class)",
    "recon/inverted_mse": "recon MSE (inverted x_T)", "recon/inverted_ssim": "SSIM", "fid/samples": "FID",
}


def tables(metrics: Mapping[str, float]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per metric group. ``<name>_<k>_mean`` / ``_std`` pairs (k labels per
    class, over seeds) become a paper's table: one row per method, one column per k, mean ± std;
    every other metric is a (metric, value) row."""
    groups: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        prefix, _, rest = name.partition("/")
        groups.setdefault(prefix if rest else "other", {})[rest or name] = value
    out = []
    for prefix in [*SECTIONS, *sorted(set(groups) - set(SECTIONS))]:
        group = groups.get(prefix)
        if not group:
            continue
        paired: dict[str, dict[int, str]] = {}
        for name, value in group.items():
            match = _MEAN.match(name)
            std_name = f"{match['name']}_{match['k']}_std" if match else ""
            if match and std_name in group:
                paired.setdefault(match["name"], {})[int(match["k"])] = f"{_format(value)} ± {_format(group[std_name])}"
        done = {f"{n}_{k}_{s}" for n, ks in paired.items() for k in ks for s in ("mean", "std")}
        plain = [[name, _format(value)] for name, value in group.items() if name not in done]
        title = SECTIONS.get(prefix, prefix)
        if paired:
            ks = sorted({k for ks in paired.values() for k in ks})
            rows = [[name, *(cells.get(k, "-") for k in ks)] for name, cells in paired.items()]
            few = f"{title}, few labels (mean ± std over label draws)" if plain else title  # two tables, two titles
            out.append((few, ["method", *(f"{k} per class" for k in ks)], rows))
        if plain:
            out.append((title, ["metric", "value"], plain))
    return out


def to_markdown(report: Mapping[str, Any], image_root: Path | None = None) -> str:
    """A heading, one table per metric group, then the images (linked relative to ``image_root``,
    the report's folder)."""
    lines = [f"# {report['method']} on {report['data']}", ""]
    if report.get("checkpoint"):
        lines += [f"Checkpoint: `{report['checkpoint']}`", ""]
    if report.get("global_step") is not None:
        lines += [f"Step: {report['global_step']}", ""]
    for title, header, rows in tables(report["metrics"]):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    images = report.get("images") or []
    if images:
        lines += ["## Images", ""]
        for image in images:
            link = os.path.relpath(image, image_root) if image_root else image
            lines += [f"![{Path(image).stem}]({link})", ""]
    return "\n".join(lines)


def to_text(report: Mapping[str, Any]) -> str:
    """The console table printed at the end of ``fit`` and ``test`` (as ``trainer.test`` prints its own)."""
    lines = [f"diffrep: what {report['method']} on {report['data']} learned"
             + (f" (step {report['global_step']})" if report.get("global_step") is not None else "")]
    for title, header, rows in tables(report["metrics"]):
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        lines += [title, rule, "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |", rule]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
        lines.append(rule)
    for image in report.get("images") or []:
        lines.append(f"image: {image}")
    return "\n".join(lines)


def headline(report: Mapping[str, Any], label: str | None = None) -> str:
    """One line of the numbers a person compares first (``HEADLINE``) that this report has."""
    metrics = report["metrics"]
    parts = []
    for name, title in HEADLINE.items():
        if name in metrics:
            value = metrics[name]
            text = f"{100 * value:.1f}%" if "accuracy" in name or name.startswith("semi/") or "few_label" in name \
                else _format(value)
            parts.append(f"{title} {text}")
    step = report.get("global_step")
    return f"{label or report['method']}" + (f" (step {step})" if step is not None else "") + ": " + (
        ", ".join(parts) or "no metrics")


def write_report(report: Mapping[str, Any], stem: Path, overwrite: bool = True,
                 markdown_name: str | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (or ``markdown_name`` beside it); return both paths.
    ``overwrite=False`` versions the names (``<stem>-v1``, ...) instead of replacing an earlier report."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    base, version = stem, 0
    def taken(stem: Path) -> bool:
        return stem.with_name(stem.name + ".json").exists() or stem.with_name(stem.name + ".md").exists()

    while not overwrite and taken(stem):
        version += 1
        stem = base.with_name(f"{base.name}-v{version}")
    json_path = stem.with_name(stem.name + ".json")
    md_path = stem.with_name(markdown_name) if markdown_name else stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report, md_path.parent))
    return json_path, md_path


def comparison(reports: Sequence[Mapping[str, Any]], columns: Mapping[str, str], names: Sequence[str] | None = None,
               formats: Mapping[str, Callable[[float], str]] | None = None) -> str:
    """A Markdown table, one row per report and one column per metric (``columns``: metric ->
    heading); a metric a method does not have shows as '-'. ``formats``: metric -> formatter
    (e.g. accuracies as percentages); others get four significant places."""
    formats = formats or {}
    header = "| method | " + " | ".join(columns.values()) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for i, report in enumerate(reports):
        values = report["metrics"]
        cells = [formats.get(m, _format)(values[m]) if m in values else "-" for m in columns]
        lines.append(f"| {names[i] if names else report['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_line(path: Path) -> str:
    """One line for ``make demo``'s summary: a run's ``metrics.json`` (``headline``) or the
    reconstruction benchmark's JSON (PDAE from its inverted x_T, and the DPM alone)."""
    data = json.loads(path.read_text())
    if "scores" in data:
        scores = data["scores"]
        pdae, dpm = scores["pdae, inverted x_T"], scores["dpm, own inversion"]
        return (f"reconstruction ({data['images']} test images, {data['steps']} DDIM steps): PDAE from its inverted "
                f"x_T MSE {pdae['mse']:.5f} / SSIM {pdae['ssim']:.3f}; the DPM alone {dpm['mse']:.5f} / "
                f"{dpm['ssim']:.3f}; PDAE from random x_T {scores['pdae, random x_T']['mse']:.4f}")
    return headline(data, f"{data['method']} in {path.parent}")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m diffrep.report summary FILE...``: one line per file (``summary_line``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m diffrep.report")
    parser.add_argument("command", choices=["summary"])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"diffrep: error: no such report: {', '.join(missing)} (run the stage that writes it)", file=sys.stderr)
        sys.exit(2)
    print("summary (the README's 'Two commands' shows what to expect):")
    for path in args.files:
        print("  " + summary_line(path))


if __name__ == "__main__":
    main()
