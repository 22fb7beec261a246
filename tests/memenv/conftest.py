"""The embedded MNIST pools, parsed once per test module for the env tests that ask for it."""

from __future__ import annotations

import pytest

import memenv.task


@pytest.fixture(scope="module")
def embedded_pools() -> dict:
    return {}


@pytest.fixture
def embedded_images_once(embedded_pools, monkeypatch):
    """The embedded MNIST pools, parsed once for the module instead of once per test (the root
    conftest gives every test a fresh cache; parsing the embedded CSV takes about a second, and
    table-driven env tests make many small tests). Other data still loads as usual."""
    real = memenv.task.load_images

    def load(dataset, split, root=None, download=False):
        if (dataset, root, download) != ("mnist", None, False):
            return real(dataset, split, root=root, download=download)
        if split not in embedded_pools:
            embedded_pools[split] = real(dataset, split)
        return embedded_pools[split]

    monkeypatch.setattr(memenv.task, "load_images", load)
