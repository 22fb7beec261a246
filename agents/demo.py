"""The README's demo: train the ``fast`` preset on MNIST, evaluate, write a figure and a summary."""

from __future__ import annotations

from pathlib import Path

from agents.evaluate import DEFAULT_DELAYS
from memenv.errors import UsageError


def demo(
    out_dir: str | Path = "runs/demo",
    cells: tuple[str, ...] = ("gru",),
    n_trials: int = 500,
    delays: tuple[int, ...] = DEFAULT_DELAYS,
    progress: bool = True,
    overrides: dict | None = None,
) -> dict[str, Path]:
    """Trains the ``fast`` preset (embedded MNIST unless full MNIST is configured), evaluates
    on held-out images, and writes the accuracy-vs-delay figure and a markdown summary.

    A run that already finished in ``out_dir`` is reused; an interrupted one is resumed.

    Args:
        out_dir: Output folder; each cell's run goes to ``out_dir/<cell>``.
        cells: Cells to train (``"gru"``, ``"lstm"``, ``"rnn"``).
        n_trials: Evaluation trials (each used at every delay).
        delays: Delays to evaluate.
        progress: Progress bars.
        overrides: `TrainConfig` fields to change from the preset (tests use a tiny run).

    Returns:
        ``{"figure", "summary", "<cell>": run dir, "<cell>_json": result}`` paths (also printed).
    """
    from agents.config import preset
    from agents.plots import plot_delay_accuracy
    from agents.report import evaluate_run, write_summary
    from agents.trainer import train

    if not cells:
        raise UsageError("demo needs at least one cell, got none")
    if n_trials < 1:
        raise UsageError(f"n_trials must be >= 1, got {n_trials}")
    # every configuration is checked before the first one trains for minutes
    configs = {cell: preset("fast", **{"cell": cell, **(overrides or {})}) for cell in cells}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluations = {}
    paths: dict[str, Path] = {}
    for cell, config in configs.items():
        run_dir = out / cell
        if (run_dir / "model.pt").is_file():
            print(f"{run_dir}: already trained, reusing it")
        else:
            print(
                f"training {cell.upper()}-{config.hidden_size} ({config.total_steps} steps) in {run_dir}"
            )
            train(config, run_dir, progress=progress)
        print(
            f"evaluating {run_dir} on held-out images ({n_trials} trials, delays up to {max(delays)})"
        )
        evaluation = evaluate_run(run_dir, n_trials=n_trials, delays=delays, progress=progress)
        title = f"{cell.upper()}-{config.hidden_size}"
        evaluations[title] = evaluation
        paths[cell] = run_dir
        paths[f"{cell}_json"] = evaluation.delay_accuracy.save(
            run_dir / "eval" / "delay_accuracy.json"
        )
    fig = plot_delay_accuracy(
        {t: e.delay_accuracy for t, e in evaluations.items()},
        title="fast preset, MNIST, held-out images",
    )
    paths["figure"] = out / "accuracy_vs_delay.png"
    fig.savefig(paths["figure"], dpi=120)
    paths["summary"] = write_summary(out / "summary.md", evaluations)
    print(paths["summary"].read_text())
    print(f"wrote {paths['figure']} (accuracy vs delay) and {paths['summary']} (summary)")
    for cell in cells:
        print(
            f"  run {paths[cell]}/ (model.pt, checkpoints/, metrics.jsonl), result {paths[cell + '_json']}"
        )
    return paths
