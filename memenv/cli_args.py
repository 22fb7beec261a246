"""Argument types for the ``memenv`` subcommands: values are checked while parsing.

A bad value is refused by argparse before any work starts, as
``memenv CMD: error: argument --threads: must be an integer >= 1, got '-1'`` (exit 2). Every
subcommand, whatever its layer, takes its numeric and list options through these types so that
the same kind of value is checked, and refused, the same way everywhere.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (trial counts, steps, sizes, threads)."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (seeds, member indices, counts that may be zero)."""
    return _integer(text, 0)


def _real(text: str, minimum: float, strict: bool) -> float:
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, scales)."""
    return _real(text, 0.0, strict=True)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (penalty weights, noise scales)."""
    return _real(text, 0.0, strict=False)


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether it exists is checked later)."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def name_list(choices: tuple[str, ...] | None = None) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated, non-empty list of names, each one of ``choices`` when given."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in text.split(",") if part.strip())
        if not names:
            raise argparse.ArgumentTypeError(f"needs at least one name, got {text!r}")
        if choices is not None:
            unknown = [name for name in names if name not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown name(s) {', '.join(map(repr, unknown))}; choose from "
                    f"{', '.join(choices)}"
                )
        return names

    parse.__name__ = "name list"
    return parse


def int_list(minimum: int) -> Callable[[str], tuple[int, ...]]:
    """A comma-separated, non-empty list of integers, each >= ``minimum``."""

    def parse(text: str) -> tuple[int, ...]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"needs at least one integer, got {text!r}")
        try:
            values = tuple(int(part) for part in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated integers, got {text!r}"
            ) from None
        if min(values) < minimum:
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {text!r}")
        return values

    parse.__name__ = "integer list"
    return parse


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's CPU threads (N >= 1; default: torch's own choice)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads, >= 1 (default: torch's; 1 is often faster on a busy shared CPU)",
    )


def apply_threads(threads: int | None) -> None:
    """Sets torch's CPU threads when ``--threads`` was given."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
