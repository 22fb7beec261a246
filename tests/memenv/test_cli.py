import json

import pytest

from memenv.cli import main


def test_rollout_reports_what_it_did(capsys):
    assert main(["rollout", "--num-envs", "8", "--episodes", "2", "--policy", "oracle"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] == 16 and summary["response_accuracy"] == 1.0
    assert "embedded" in summary["data_source"]


def test_null_policy_never_answers(capsys):
    main(["rollout", "--num-envs", "4", "--episodes", "1", "--policy", "null", "--n-classes", "3"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["response_accuracy"] == 0.0 and summary["config"]["n_classes"] == 3


def test_bad_values_are_reported_not_raised(capsys):
    assert main(["rollout", "--t-max", "99"]) == 2
    assert "t_max=99" in capsys.readouterr().err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "rollout" in capsys.readouterr().out
