"""Summarises a GPU check (run.sh): each training's final metrics, wall time and steps/s on the
GPU beside the same training on the CPU, and the relative difference of each metric.

    python compare.py OUT DEVICE   > OUT/summary.md
"""

import json
import pathlib
import sys

out, device = pathlib.Path(sys.argv[1]), sys.argv[2]


def summary(label):
    found = sorted((out / "runs" / label).glob("*/version_*/summary.json"))
    return json.loads(found[-1].read_text()) if found else None


def steps(text):
    return {line.split()[0]: line for line in text.splitlines() if line.strip()}


print(f"# GPU check on {device}\n")
print("```")
print((out / "steps.txt").read_text().strip())
print("```\n")
rows = []
for label in sorted(p.name for p in (out / "runs").iterdir()):
    if label.endswith("-cpu"):
        continue
    config = label.split("-")[0]
    run, cpu = summary(label), summary(f"{config}-cpu")
    if run is None:
        rows.append(f"| {label} | (no summary: see train-{label}.log) | | | |")
        continue
    seconds = sum(run.get("epoch_seconds", []))
    rate = run.get("global_step", 0) / seconds if seconds else float("nan")
    cells = []
    for name, value in sorted(run.get("final_metrics", {}).items()):
        if not name.startswith(("val_", "test_")):
            continue
        reference = (cpu or {}).get("final_metrics", {}).get(name)
        if reference:
            cells.append(f"{name} {value:.4g} (cpu {reference:.4g}, {100 * (value - reference) / abs(reference):+.3g}%)")
        else:
            cells.append(f"{name} {value:.4g}")
    cpu_seconds = sum((cpu or {}).get("epoch_seconds", [])) if cpu else None
    speed = f"{cpu_seconds / seconds:.2f}" if cpu_seconds and seconds else ""
    rows.append(f"| {label} | {run.get('global_step')} | {rate:.1f} | {speed} | {'; '.join(cells)} |")
print("| run | steps | steps/s | CPU time / this time | final metrics (against the same run on the CPU) |")
print("| --- | --- | --- | --- | --- |")
print("\n".join(rows))
