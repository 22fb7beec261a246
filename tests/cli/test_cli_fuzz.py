"""Fuzzing the command line: every typed option of every subcommand, and damaged run files.

The property is the same everywhere: a clear error (exit 2, one line naming the option or
file) or correct behaviour; never a traceback, never a hang.
"""

from __future__ import annotations

import argparse
import math

import pytest
from cli_helpers import memenv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memenv import cli_args
from memenv.cli import build_parser

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# what a value that passed each type must satisfy
ACCEPTED = {
    cli_args.positive_int: lambda v: isinstance(v, int) and v >= 1,
    cli_args.nonnegative_int: lambda v: isinstance(v, int) and v >= 0,
    cli_args.positive_float: lambda v: isinstance(v, float) and math.isfinite(v) and v > 0,
    cli_args.nonnegative_float: lambda v: isinstance(v, float) and math.isfinite(v) and v >= 0,
    cli_args.device: lambda v: cli_args.DEVICE_PATTERN.match(v) is not None,
}


def _typed_options() -> list[tuple[str, str, list[str], argparse.Action]]:
    """(subcommand, option, the arguments it cannot go without, action) per typed option."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, sub in subparsers.choices.items():
        positionals = [
            "x" for a in sub._actions if not a.option_strings and a.required or a.nargs == "+"
        ]
        for a in sub._actions:
            if a.option_strings and a.required:
                positionals += [a.option_strings[0], a.choices[0] if a.choices else "1"]
        for action in sub._actions:
            if action.option_strings and action.type is not None:
                found.append((name, action.option_strings[0], positionals, action))
    return found


TYPED = _typed_options()

# argparse itself turns ``--opt=--`` into an empty list without calling the type; that quirk of
# the standard library is left out of the corpus
values = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["", " ", "nan", "-inf", "1e999", "0x10", "1_000", "１", "3.", "--", ",", "a,b"]
    ),
    st.text(max_size=12),
).filter(lambda text: text != "--")


def test_every_subcommand_has_typed_options():
    commands = {command for command, *_ in TYPED}
    assert {"train", "eval", "analyze", "regularize", "bench", "reproduce", "rollout"} <= commands
    assert len(TYPED) >= 40


@pytest.mark.parametrize(
    ("command", "option", "positionals", "action"), TYPED, ids=[f"{c}{o}" for c, o, *_ in TYPED]
)
@FUZZ
@given(text=values)
def test_a_typed_option_is_parsed_right_or_refused_clearly(
    command, option, positionals, action, text, capsys
):
    parser = build_parser()
    try:
        args = parser.parse_args([command, *positionals, f"{option}={text}"])
    except SystemExit as stop:
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert stop.code == 2
        assert last.startswith(f"memenv {command}: error: argument {option}"), last
        return
    value = getattr(args, action.dest)
    check = ACCEPTED.get(action.type)
    if check is not None:
        assert check(value), (option, text, value)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["eval", "RUN", "--n-trials", "0"], "--n-trials"),
        (["train", "--threads", "-1"], "--threads"),
        (["train", "--threads", "0"], "--threads"),
        (["analyze", "RUN", "--threads", "0"], "--threads"),
        (["eval", "RUN", "--device", "tpu"], "--device"),
        (["demo", "--n-trials", "0"], "--n-trials"),
        (["demo", "--cells", ""], "--cells"),
        (["demo", "--cells", " , "], "--cells"),
        (["rollout", "--num-envs", "0"], "--num-envs"),
        (["bench", "--seeds", ""], "--seeds"),
        (["bench", "--seeds", "0,x"], "--seeds"),
        (["bench", "--jobs", "0"], "--jobs"),
        (["reproduce", "--jobs", "0"], "--jobs"),
        (["regularize", "RUN", "--mode", "center", "--lr", "-1"], "--lr"),
        (["regularize", "RUN", "--mode", "center", "--lam", "nan"], "--lam"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--steps", "1e3"], "--steps"),
        (["eval", "RUN", "--t-stim", "-1"], "--t-stim"),
        (["eval", "RUN", "--delays", "0,4"], "--delays"),
    ],
)
def test_bad_values_are_refused_while_parsing(argv, named):
    memenv(*argv).assert_clear_error(argv[0], f"argument {named}")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["rollout", "--env-id", "Nope-v0"], "'Nope-v0' is not registered"),
        (["rollout", "--env-id", "CartPole-v1"], "not a memenv environment"),
        (["rollout", "--env-id", "DelayedRecall-MNIST-v9"], "did you mean"),
        (["bench", "--archs", "", "--model", "os:getcwd", "--out", "OUT"], "os:getcwd"),
        (["bench", "--archs", "", "--model", "math:pi", "--out", "OUT"], "not callable"),
        (["bench", "--archs", "nope", "--out", "OUT"], "'nope'"),
        (["demo", "--cells", "gru,xyz", "--out", "OUT"], "'xyz'"),
        (["analyze", "MISSING"], "MISSING"),
        (["regularize", "MISSING", "--mode", "center"], "MISSING"),
    ],
)
def test_bad_values_are_refused_before_any_work(argv, named, tmp_path):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    argv = [a.replace("MISSING", str(tmp_path / "missing")) for a in argv]
    named = named.replace("MISSING", str(tmp_path / "missing"))
    outcome = memenv(*argv)
    outcome.assert_clear_error(argv[0], named)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("model.pt"))


@FUZZ
@given(
    cut=st.integers(min_value=0, max_value=10**6),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=8),
)
def test_a_damaged_model_file_evaluates_or_is_refused_clearly(run_template, tmp_path, cut, flips):
    import shutil

    run = tmp_path / "fuzzed"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(run_template, run)
    raw = bytearray((run / "model.pt").read_bytes())
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    (run / "model.pt").write_bytes(bytes(raw[: max(0, len(raw) - cut % (len(raw) + 1))]))

    outcome = memenv("eval", run, "--n-trials", "2", "--delays", "4", "--no-progress")

    if outcome.code != 0:
        outcome.assert_clear_error("eval", "model.pt")
