"""The one report writer: markdown, HTML with embedded figures, strict JSON."""

from __future__ import annotations

import json
import math

import numpy as np
from matplotlib.figure import Figure

from studies.report import json_safe, write_report
from studies.reproduce_report import plot_speed_vs_accuracy


def test_report_files(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    paths = write_report(
        tmp_path / "r",
        markdown=(
            "table.md",
            "# A table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![plot](plot.png)\n",
        ),
        figures={"plot": figure},
        data={"table.json": {"x": math.nan, "y": np.float32(2.5), "z": (1, np.inf)}},
    )
    assert sorted(paths) == ["figure_plot", "html", "report", "table"]
    assert paths["figure_plot"].read_bytes().startswith(b"\x89PNG")
    page = paths["html"].read_text()
    assert "<title>A table</title>" in page and "<td>2</td>" in page
    assert 'src="data:image/png;base64,iVBOR' in page  # the figure itself, not a link
    assert json.loads(paths["table"].read_text()) == {"x": None, "y": 2.5, "z": [1, None]}
    assert json_safe({1: np.array([np.nan, 1.0])}) == {"1": [None, 1.0]}


def test_speed_figure_of_networks_without_a_positive_speed(tmp_path):
    networks = [{"cell": "gru", "curriculum": "none", "mean_speed": s, "long_accuracy": 0.1}
                for s in (0.0, math.nan)]  # fmt: skip
    figure = plot_speed_vs_accuracy(networks, long_delay_min=30)
    figure.savefig(tmp_path / "f.png")  # a log axis of no data raised here
    assert "no network has a finite positive speed" in [t.get_text() for t in figure.axes[0].texts]
