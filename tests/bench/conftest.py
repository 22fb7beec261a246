"""Makes the plug-in models of ``bench_plugin_model.py`` importable as ``bench_plugin_model``.

pytest runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``; a
plug-in spec ``"bench_plugin_model:factory"`` needs the module importable by name, as a user's
own package would be.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
