"""`plot_schedule`: classes and T_max against training step (matplotlib, no ``plt.show``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curricula.adaptive import AdaptiveSchedule
from curricula.schedule import Curriculum, Schedule
from memenv.config import N_LABELS, TaskConfig
from memenv.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def schedule_steps(
    schedule: Curriculum, base: TaskConfig | None = None, total_steps: int | None = None
) -> tuple[list[int], list[int], list[int]]:
    """Step-function data of a schedule: ``(starts + [end], n_classes, t_max)``.

    The value lists have one entry per start plus a repeat of the last value at ``end``, ready
    for ``ax.step(..., where="post")``. Settings are resolved over ``base`` (default
    ``TaskConfig()``), so a schedule that sets only one of the two still has both curves. For an
    adaptive schedule the stages entered so far (its ``history``) are drawn.

    Raises:
        ValueError: ``total_steps`` not after the last start.
    """
    base = TaskConfig() if base is None else base
    if isinstance(schedule, Schedule):
        starts = schedule.starts
        settings = schedule.stage_settings()
    elif isinstance(schedule, AdaptiveSchedule):
        stage_settings = schedule.stage_settings()
        starts = [start for _, start in schedule.history]
        settings = [stage_settings[stage] for stage, _ in schedule.history]
    else:
        raise UsageError(f"cannot plot {type(schedule).__name__}; expected a schedule")
    end = total_steps if total_steps is not None else getattr(schedule, "total_steps", None)
    if end is None:
        end = max(1, int(starts[-1] * 1.25) + (1 if len(starts) == 1 else 0))
    if end <= starts[-1]:
        raise UsageError(f"total_steps={end} must be after the last stage start {starts[-1]}")
    configs = [base.with_episode_options(s) for s in settings]
    classes = [c.n_classes for c in configs]
    t_max = [c.t_max for c in configs]
    return [*starts, end], [*classes, classes[-1]], [*t_max, t_max[-1]]


def format_steps(ax: Axes) -> None:
    """Step ticks in thousands (``20k``) on the x axis of ``ax``."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))


def plot_schedule(
    schedule: Curriculum,
    base: TaskConfig | None = None,
    total_steps: int | None = None,
    axes: tuple[Axes, Axes] | None = None,
    label: str | None = None,
    **line_kwargs: Any,
) -> Figure:
    """Draws the number of classes (top) and T_max (bottom) against the training step.

    Call it again with the returned figure's ``axes`` to overlay another schedule.

    Args:
        schedule: A fixed or adaptive schedule (adaptive: the stages entered so far).
        base: Task configuration the settings apply to (default ``TaskConfig()``).
        total_steps: Right end of the curves (default: ``schedule.total_steps``).
        axes: Two matplotlib axes to draw into; new ones (sharing x) when omitted.
        label: Legend label (default: the schedule's name).
        **line_kwargs: Passed to ``Axes.step`` (``color``, ``linestyle``...).

    Returns:
        The figure holding ``axes``. Nothing is shown or saved.
    """
    steps, classes, t_max = schedule_steps(schedule, base, total_steps)
    if axes is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.0, 4.0), layout="constrained")
        ax_classes, ax_t_max = figure.subplots(2, 1, sharex=True)
        ax_classes.set_ylabel("classes")
        ax_classes.set_ylim(0, N_LABELS + 1)
        ax_t_max.set_ylabel("T_max")
        ax_t_max.set_xlabel("training step")
        for ax in (ax_classes, ax_t_max):
            ax.grid(alpha=0.3)
        format_steps(ax_t_max)
    else:
        ax_classes, ax_t_max = axes
        figure = ax_classes.figure
    label = schedule.name if label is None else label
    ax_classes.step(steps, classes, where="post", label=label, **line_kwargs)
    ax_t_max.step(steps, t_max, where="post", label=label, **line_kwargs)
    ax_classes.legend(loc="lower right", fontsize="small")
    return figure


def plot_paper_schedules() -> Figure:
    """The paper's VoCu and DeCu for MNIST (left) and CIFAR-10 (right), at ``scale=1``.

    This is the figure of docs/curricula.md (``docs/figures/curricula.png``).
    """
    from matplotlib.figure import Figure

    from curricula.paper import decu, vocu

    figure = Figure(figsize=(8.0, 4.5), layout="constrained")
    axes = figure.subplots(2, 2, sharex="col", sharey="row")
    for column, (dataset, title) in enumerate((("mnist", "MNIST"), ("cifar10", "CIFAR-10"))):
        pair = (axes[0, column], axes[1, column])
        plot_schedule(vocu(dataset), axes=pair, label="VoCu", color="C0")
        plot_schedule(decu(dataset), axes=pair, label="DeCu", color="C3", linestyle="--")
        axes[0, column].set_title(title)
        axes[1, column].set_xlabel("training step")
        format_steps(axes[1, column])
        for ax in pair:
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("classes")
    axes[1, 0].set_ylabel("T_max")
    axes[0, 0].set_ylim(0, N_LABELS + 1)
    return figure
