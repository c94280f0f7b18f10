"""The evaluation report of ``diffrep test``: JSON for machines, Markdown for people.

Metric names are grouped by their prefix (``probe/``, ``recon/``, ``fid/``, ``test/``), so a
report reads the same for every method and reports can be set side by side (``comparison``).
"""

from __future__ import annotations

import json
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
}


def build_report(method: str, data: str, checkpoint: str | None, metrics: Mapping[str, float],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"method": method, "data": data, "checkpoint": checkpoint,
            "metrics": {k: float(v) for k, v in sorted(metrics.items())}, **(extra or {})}


def _format(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def to_markdown(report: Mapping[str, Any]) -> str:
    """A heading, then one two-column table per metric group."""
    lines = [f"# {report['method']} on {report['data']}", ""]
    if report.get("checkpoint"):
        lines += [f"Checkpoint: `{report['checkpoint']}`", ""]
    groups: dict[str, list[tuple[str, float]]] = {}
    for name, value in report["metrics"].items():
        prefix, _, rest = name.partition("/")
        groups.setdefault(prefix if rest else "other", []).append((rest or name, value))
    for prefix in [*SECTIONS, *sorted(set(groups) - set(SECTIONS))]:
        if prefix not in groups:
            continue
        lines += [f"## {SECTIONS.get(prefix, prefix)}", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {_format(value)} |" for name, value in groups[prefix]]
        lines.append("")
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], stem: Path) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report))
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
