"""The layering of docs/studies.md, read from the source: memenv <- curricula <- agents <-
analysis <- studies, each importing only from the layers below it (the command line finds the
subcommands through entry points), and the analysis core free of argparse, git and studies."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("memenv", "curricula", "agents", "analysis", "studies")
NOT_IN_THE_CORE = ("argparse", "subprocess", "studies")
"""What the pure analysis core never imports: command lines, git, run-directory studies."""


def imports(path: Path) -> set[str]:
    """The top-level names a module imports (anywhere in it, lazily too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def import_graph() -> dict[str, set[str]]:
    """``{layer: the layers its modules import}``."""
    return {
        layer: set().union(*(imports(p) for p in (ROOT / layer).rglob("*.py")))
        & set(LAYERS) - {layer}
        for layer in LAYERS
    }


def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph()
    for layer, used in graph.items():
        above = set(LAYERS[LAYERS.index(layer) + 1 :])
        assert not used & above, f"{layer} imports {sorted(used & above)}, a layer above it"
    assert "analysis" in graph["studies"] and "agents" in graph["analysis"]  # really read


@pytest.mark.parametrize("path", sorted((ROOT / "analysis").glob("*.py")), ids=lambda p: p.name)
def test_the_analysis_core_has_no_command_line_git_or_studies(path):
    assert not imports(path) & set(NOT_IN_THE_CORE)


def test_the_command_line_names_no_upper_layer():
    assert not imports(ROOT / "memenv" / "cli.py") & set(LAYERS[1:])
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."memenv.commands"]' in text
