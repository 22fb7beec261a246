"""Speeds are budgets, not properties: a study's class speeds under several search budgets.

For every finished ensemble run of a ``memenv reproduce`` study (``OUT/train/<cell>-<curriculum>/``)
and every member, `analysis.speed_budget.budget_speeds` computes the class centres once, with
the study's own analysis settings (``OUT/config.json``), and runs the Levenberg-Marquardt
search from each centre under every budget of ``--budgets`` (Jacobians per search; the study
used 50), and the paper's Adam search on the first ``--adam-networks`` networks. It then asks
whether the ranking of networks by geometric-mean class speed survives a larger budget
(Kendall's tau between budgets) and names the smallest budget whose ranking every larger one
confirms (tau >= ``--threshold``).

Networks whose centres cannot be computed (the network answers no class correctly) are skipped
and listed. The results go to ``OUT/speed_budget.json`` (``--out``), rewritten after every
network; a network already there with the same budgets is read back, not redone.

Usage::

    python benchmarks/speed_budget.py --study runs/reproduce-fast-mnist
    python benchmarks/speed_budget.py --study OUT --budgets 50,200,1000 --adam-networks 2 \\
        --adam-iterations 100000 --curricula vocu,decu --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.checkpoint import load_model, read_json, write_json
from analysis import speed_budget
from analysis.pipeline import AnalysisOptions
from analysis.speed_budget import (
    BudgetSpeeds,
    adam_label,
    budget_markdown,
    geometric_means,
    lm_budget,
    lm_label,
    ranking_agreement,
    stable_budget,
)
from studies.run_analysis import analysis_task, run_info

OUTPUT_NAME = "speed_budget.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", required=True, help="a memenv reproduce study folder (OUT)")
    parser.add_argument("--budgets", default="50,200,1000", help="LM budgets, comma-separated")
    parser.add_argument("--adam-networks", type=int, default=0, help="Adam on the first K networks")
    parser.add_argument("--adam-iterations", type=int, default=100_000, help="Adam iterations")
    parser.add_argument("--curricula", default=None, help="comma-separated (default: the study's)")
    parser.add_argument("--threshold", type=float, default=0.8, help="tau of a stable budget")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--out", default=None, help=f"results file (default OUT/{OUTPUT_NAME})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        args.budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--budgets must be comma-separated integers, got {args.budgets!r}")
    if not args.budgets or min(args.budgets) < 0 or len(set(args.budgets)) != len(args.budgets):
        parser.error(f"--budgets must be distinct integers >= 0, got {args.budgets}")
    if args.adam_networks < 0 or args.adam_iterations < 0:
        parser.error("--adam-networks and --adam-iterations must be >= 0")
    return args


def study_runs(study: Path, curricula: list[str] | None) -> list[tuple[str, str, Path]]:
    """``(cell, curriculum, run_dir)`` of every finished run of the study folder (whatever
    cells its last call named), cells and curricula in the study's canonical order."""
    from studies.reproduce import CURRICULA

    runs = []
    for cell in ("gru", "lstm", "rnn"):
        for curriculum in curricula or CURRICULA:
            run_dir = study / "train" / f"{cell}-{curriculum}"
            if (run_dir / "model.pt").is_file():
                runs.append((cell, curriculum, run_dir))
    return runs


def network_key(cell: str, curriculum: str, member: int) -> str:
    return f"{cell}-{curriculum}-m{member}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    study = Path(args.study)
    out = Path(args.out) if args.out else study / OUTPUT_NAME
    options = AnalysisOptions(**read_json(study / "config.json")["analysis"])
    curricula = [c.strip() for c in args.curricula.split(",")] if args.curricula else None
    lm_labels = [lm_label(b) for b in args.budgets]
    labels = lm_labels + ([adam_label(args.adam_iterations)] if args.adam_networks else [])

    networks = [
        (cell, curriculum, run_dir, member)
        for cell, curriculum, run_dir in study_runs(study, curricula)
        for member in range(run_info(run_dir).config.n_members)
    ]
    previous = read_json(out)["networks"] if out.is_file() else []
    done = {record["key"]: record for record in previous}
    listed = {network_key(c, u, m) for c, u, _, m in networks}
    others = [r for r in previous if r["key"] not in listed]  # never drop measured networks
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    started = time.perf_counter()
    bar = tqdm(networks, desc="networks", unit="net", disable=args.no_progress)
    for position, (cell, curriculum, run_dir, member) in enumerate(bar):
        key = network_key(cell, curriculum, member)
        adam = position < args.adam_networks
        wanted = lm_labels + ([adam_label(args.adam_iterations)] if adam else [])
        if key in done and set(wanted) <= set(done[key]["speeds"]["labels"]):
            records.append(done[key])  # a record with more budgets (Adam) is kept whole
            continue
        bar.set_postfix_str(key)
        info = run_info(run_dir, member)
        n_final = info.n_classes_at(info.final_step)
        task = analysis_task(info.config, n_final)
        model = load_model(run_dir, member=member)
        began = time.perf_counter()
        try:
            result = speed_budget.budget_speeds(
                model, task, options, args.budgets, n_classes=n_final,
                adam_iterations=args.adam_iterations if adam else None,
                progress=not args.no_progress,
            )  # fmt: skip
        except ValueError as error:
            skipped.append({"key": key, "error": f"{type(error).__name__}: {error}"})
            continue
        records.append(
            {
                "key": key, "cell": cell, "curriculum": curriculum, "member": member,
                "n_classes": n_final, "seconds": time.perf_counter() - began,
                "speeds": result.to_dict(),
            }
        )  # fmt: skip
        write_json(out, summary(records + others, skipped, labels, args, options))
    bar.close()
    records += others
    # every Adam row measured, this call's or an earlier one's, stays in the table
    adam_rows = {x for r in records for x in r["speeds"]["labels"] if lm_budget(x) is None}
    labels = lm_labels + sorted(adam_rows)
    record = summary(records, skipped, labels, args, options)
    record["wall_s"] = time.perf_counter() - started
    write_json(out, record)

    results = [BudgetSpeeds.from_dict(r["speeds"]) for r in records]
    print(f"{len(records)} networks, budgets {labels}; results: {out}\n")
    groups = [(r["cell"], r["curriculum"]) for r in records]
    print(budget_markdown(results, labels=labels, stable=record["stable_budget"], groups=groups))
    for item in skipped:
        print(f"skipped {item['key']}: {item['error']}")
    return 0


def summary(
    records: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    labels: list[str],
    args: argparse.Namespace,
    options: AnalysisOptions,
) -> dict[str, Any]:
    """The output file's content: per network, and the ranking agreement between budgets."""
    results = [BudgetSpeeds.from_dict(r["speeds"]) for r in records]
    groups = [(r["cell"], r["curriculum"]) for r in records]
    agreement = ranking_agreement(geometric_means(results, labels), groups)
    return {
        "study": str(args.study),
        "labels": labels,
        "budgets": args.budgets,
        "adam_networks": args.adam_networks,
        "adam_iterations": args.adam_iterations,
        "analysis": {"cell_speed": options.cell_speed, "n_per_class": options.n_per_class,
                     "settle_steps": options.settle_steps, "noise_scale": options.noise_scale,
                     "shared_noise": options.shared_noise, "seed": options.seed},
        "threads": torch.get_num_threads(),
        "networks": records,
        "skipped": skipped,
        "tau": _json_matrix(agreement["tau"]),
        "p": _json_matrix(agreement["p"]),
        "n": agreement["n"].tolist(),
        "threshold": args.threshold,
        "stable_budget": stable_budget(labels, agreement["tau"], args.threshold),
        "seconds": sum(r["seconds"] for r in records),
    }  # fmt: skip


def _json_matrix(matrix: np.ndarray) -> list[list[float | None]]:
    return [[float(v) if np.isfinite(v) else None for v in row] for row in matrix]


if __name__ == "__main__":
    sys.exit(main())
