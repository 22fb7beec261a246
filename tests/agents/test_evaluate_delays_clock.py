"""`evaluate_delays` sends the trigger exactly ``d`` steps after the image and reports it as ``d``.

The reference networks of test_evaluate.py answer alike at neighbouring delays, so a delay
reported one step off would pass there. The hand-built clock below answers correctly only when
the trigger comes exactly ``answer_delay`` steps after the image, and names a wrong class
otherwise: its accuracy is 1 at that delay and 0 at the delays beside it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agents.evaluate import batch_correct, evaluate_delays
from agents.protocol import N_OUTPUTS, check_agent
from memenv import DelayedRecallTask
from tests.protocol_models import ImagePoolModel

NOT_SEEN = -1.0


class ClockNetwork(ImagePoolModel):
    """A recurrent network that knows the image pool and counts steps since the image.

    State ``[B, 3]``: ``(steps since the image or -1 before it, class of the image, trigger of
    the last frame)``. The image frame is recognised by matching the pixels against the task's
    image pool (noise frames match no image); the counter is 0 after the image frame, so after
    the trigger frame of a trial with delay ``d`` it is ``d``. The readout answers the image's
    class when the last frame carried the trigger and the counter is ``answer_delay``, and the
    next class (a wrong answer, never null) otherwise.
    """

    def __init__(self, task: DelayedRecallTask, answer_delay: int) -> None:
        super().__init__(task)
        self.answer_delay = float(answer_delay)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        state = self.unused.new_zeros(batch_size, 3)
        state[:, 0] = NOT_SEEN
        return state

    def transition(self, state: torch.Tensor, x_bxd: torch.Tensor) -> torch.Tensor:
        is_image, image_class = self.match_image(x_bxd)
        counter = torch.where(state[:, 0] == NOT_SEEN, state[:, 0], state[:, 0] + 1)
        counter = torch.where(is_image, torch.zeros_like(counter), counter)
        label = torch.where(is_image, image_class.to(state.dtype), state[:, 1])
        return torch.stack([counter, label, x_bxd[:, -1].to(state.dtype)], dim=1)

    def readout(self, state: torch.Tensor) -> torch.Tensor:
        label = state[:, 1].long()
        on_time = (state[:, 2] == 1.0) & (state[:, 0] == self.answer_delay)
        answer = torch.where(on_time, label + 1, (label + 1) % 10 + 1)
        return 10.0 * nn.functional.one_hot(answer, N_OUTPUTS).to(state.dtype)


@pytest.mark.parametrize("t_stim", [0, 3, None], ids=["t_stim=0", "t_stim=3", "t_stim=random"])
def test_the_clock_network_answers_only_at_its_delay_on_whole_trials(tiny_task, t_stim):
    """The clock itself, checked without `evaluate_delays`: whole trials of a fixed delay."""
    answer_delay = 6
    model = ClockNetwork(tiny_task, answer_delay)
    check_agent(model)
    latest = tiny_task.config.latest_stim if t_stim is None else t_stim
    for delay, expected in [(answer_delay - 1, 0), (answer_delay, 1), (answer_delay + 1, 0)]:
        n_steps = max(latest + delay + 1, tiny_task.config.t_max)
        config = tiny_task.config.replace(n_steps=n_steps, delay=delay, t_stim=t_stim)
        batch = tiny_task.with_config(config).sample(30, torch.Generator().manual_seed(1))
        assert (batch.t_resp - batch.t_stim == delay).all()
        hits = batch_correct(model, batch)
        assert hits.float().mean().item() == expected, f"delay {delay}"


@pytest.mark.parametrize("window", [None, 2], ids=["window=all", "window=2"])
@pytest.mark.parametrize("t_stim", [0, 3, None], ids=["t_stim=0", "t_stim=3", "t_stim=random"])
@pytest.mark.parametrize("answer_delay", [4, 9, 25])
def test_evaluate_delays_triggers_exactly_d_steps_after_the_image(
    tiny_task, answer_delay, t_stim, window
):
    model = ClockNetwork(tiny_task, answer_delay)
    delays = [answer_delay - 2, answer_delay - 1, answer_delay, answer_delay + 1, 40]
    result = evaluate_delays(
        model, tiny_task, delays=delays, n_trials=24, batch_size=10, t_stim=t_stim, seed=3,
        window=window,
    )  # fmt: skip
    assert result.delays.tolist() == delays
    expected = [1.0 if d == answer_delay else 0.0 for d in delays]
    assert result.accuracy[0].tolist() == expected
    assert result.n_trials.tolist() == [24] * len(delays)
    # per class as well: every trial of every class is right at answer_delay only
    assert (result.class_correct[0].sum(axis=1) == [24 * e for e in expected]).all()
    assert (result.class_trials.sum(axis=1) == 24).all()
