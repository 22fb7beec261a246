import tracemalloc

import numpy as np
import pytest
import torch
from scipy import stats

import memenv.task as task_module
from memenv import DelayedRecallTask, TaskConfig
from memenv.errors import ArgumentTypeError, UsageError


@pytest.fixture(scope="module")
def task():
    return DelayedRecallTask(TaskConfig())


def as_np(x):
    return x.numpy() if isinstance(x, torch.Tensor) else x


RNGS = {
    "numpy": lambda seed: np.random.default_rng(seed),
    "torch": lambda seed: torch.Generator().manual_seed(seed),
}


@pytest.mark.parametrize("backend", RNGS)
@pytest.mark.parametrize("t_max", [6, 11, 20])
def test_stimulus_and_response_times_follow_the_paper(task, backend, t_max):
    spec = task.with_config(TaskConfig(t_max=t_max)).sample_spec(60_000, RNGS[backend](t_max))
    t_stim, t_resp = as_np(spec.t_stim), as_np(spec.t_resp)
    # t_s ~ U{0..T_max-5}
    counts = np.bincount(t_stim, minlength=t_max - 4)
    assert len(counts) == t_max - 4
    assert stats.chisquare(counts).pvalue > 1e-4
    # t_a | t_s ~ U{t_s+4..T_max-1}
    assert (t_resp - t_stim).min() == 4 and t_resp.max() == t_max - 1
    for s in (0, t_max - 5):
        conditional = np.bincount(t_resp[t_stim == s] - s - 4)
        assert len(conditional) == t_max - 4 - s
        if len(conditional) > 1:
            assert stats.chisquare(conditional).pvalue > 1e-4
    labels = np.bincount(as_np(spec.label), minlength=10)
    assert stats.chisquare(labels).pvalue > 1e-4


@pytest.mark.parametrize("backend", RNGS)
def test_a_trial_batch_has_the_paper_structure(task, backend):
    batch = task.sample(256, RNGS[backend](1))
    obs, target, weight = as_np(batch.obs), as_np(batch.target), as_np(batch.loss_weight)
    t_stim, t_resp, label = as_np(batch.t_stim), as_np(batch.t_resp), as_np(batch.label)
    rows = np.arange(256)
    assert obs.shape == (256, 20, 785) and obs.dtype == np.float32
    trigger = obs[..., -1]
    assert trigger.sum() == 256 and (trigger[rows, t_resp] == 1).all()
    expected_target = np.zeros((256, 20), np.int64)
    expected_target[rows, t_resp] = label + 1
    np.testing.assert_array_equal(target, expected_target)
    # the paper's loss weights, as literal values (not the library's constants): 20 at the
    # response (the authors' (t_max - 1) * Z * Y + alpha * Y with t_max = 20, alpha = 1), 1 at
    # every other step (all before t_max = 20)
    assert weight.dtype == np.float32
    expected_weight = np.ones((256, 20), np.float32)
    expected_weight[rows, t_resp] = 20.0
    np.testing.assert_array_equal(weight, expected_weight)
    assert weight.sum() == 256 * (19 + 20)
    # the stimulus frame is a clean image of class `label`
    stim = obs[rows, t_stim, :-1]
    pool = task.images.images_nxp.astype(np.float32) / 255
    for b in range(0, 256, 17):
        matches = np.flatnonzero((np.abs(pool - stim[b]) < 1e-6).all(axis=1))
        assert len(matches) >= 1
        assert (matches // task.images.n_per_class == label[b]).all()


@pytest.mark.parametrize("backend", RNGS)
def test_noise_has_the_data_sets_pixel_statistics(task, backend):
    batch = task.sample(128, RNGS[backend](2))
    obs, t_stim = as_np(batch.obs), as_np(batch.t_stim)
    noise_mask = np.ones(obs.shape[:2], bool)
    noise_mask[np.arange(128), t_stim] = False
    noise = obs[noise_mask][:, :-1]
    assert noise.mean() == pytest.approx(0.1307, abs=2e-3)
    assert noise.std() == pytest.approx(0.3081, abs=2e-3)
    assert stats.kstest(noise.ravel()[:200_000], "norm", args=(0.1307, 0.3081)).pvalue > 1e-4
    assert noise.min() < -0.5  # not clipped to [0, 1]
    # fresh noise at every step: no two frames equal
    flat = noise.reshape(len(noise), -1)
    assert len(np.unique(flat[:, :8], axis=0)) == len(flat)


def test_noise_scale_zero_gives_the_mean_frame(task):
    quiet = task.with_config(TaskConfig(noise_scale=0.0))
    batch = quiet.sample(4, np.random.default_rng(0))
    frame = batch.obs[0, (batch.t_stim[0] + 1) % 20]
    np.testing.assert_allclose(frame[:-1], 0.1307, rtol=1e-6)


@pytest.mark.parametrize("backend", RNGS)
def test_same_seed_same_trials_different_seed_different_trials(task, backend):
    a, b, c = (task.sample(8, RNGS[backend](s)) for s in (5, 5, 6))
    np.testing.assert_array_equal(as_np(a.obs), as_np(b.obs))
    assert not np.array_equal(as_np(a.obs), as_np(c.obs))


def test_vocabulary_is_the_first_n_classes(task):
    small = task.with_config(TaskConfig(n_classes=3))
    labels = small.sample_spec(5000, np.random.default_rng(0)).label
    assert set(np.unique(labels)) == {0, 1, 2}


def test_steps_beyond_t_max_carry_no_loss(task):
    batch = task.with_config(TaskConfig(t_max=8)).sample(64, np.random.default_rng(0))
    assert (batch.loss_weight[:, 8:] == 0).all() and (batch.t_resp < 8).all()


@pytest.mark.parametrize("backend", RNGS)
@pytest.mark.parametrize("t_max", [12, 20])
@pytest.mark.parametrize(
    ("null_weight", "response_weight"), [(0.0, 19.0), (0.25, 19.25), (1.0, 20.0)]
)
def test_null_weight_sets_the_null_and_response_loss_weights(
    task, backend, t_max, null_weight, response_weight
):
    """ReCu's alpha: ``alpha`` at null steps before t_max, ``19 + alpha`` at the response, 0
    from t_max on. The expected weights are literal paper values (the authors' loss
    ``(t_max - 1) * Z * Y + alpha * Y`` with t_max = 20), never the library's constants."""
    config = TaskConfig(t_max=t_max, null_weight=null_weight)
    batch = task.with_config(config).sample(64, RNGS[backend](5))
    weight, t_resp = as_np(batch.loss_weight), as_np(batch.t_resp)
    assert weight.dtype == np.float32 and weight.shape == (64, 20)
    assert (t_resp < t_max).all()
    expected = np.zeros((64, 20), np.float32)
    expected[:, :t_max] = null_weight
    expected[np.arange(64), t_resp] = response_weight
    np.testing.assert_array_equal(weight, expected)
    # the trials themselves do not depend on the weight
    same = task.with_config(TaskConfig(t_max=t_max)).sample(64, RNGS[backend](5))
    np.testing.assert_array_equal(as_np(same.obs), as_np(batch.obs))
    np.testing.assert_array_equal(as_np(same.target), as_np(batch.target))


def test_obs_out_buffer_is_filled_in_place(task):
    buffer = torch.empty(16, 20, 785)
    batch = task.sample(16, torch.Generator().manual_seed(0), obs_out=buffer)
    assert batch.obs.data_ptr() == buffer.data_ptr()
    with pytest.raises(ValueError, match="shape"):
        task.sample(8, torch.Generator(), obs_out=buffer)


@pytest.mark.parametrize("backend", RNGS)
def test_long_delays_render_window_by_window_in_bounded_memory(task, backend):
    delay = 2000
    long_task = task.with_config(TaskConfig(delay=delay, t_stim=0, n_steps=delay + 1))
    rng = RNGS[backend](3)
    spec = long_task.sample_spec(32, rng)
    assert (as_np(spec.t_resp) == delay).all()
    triggers = 0
    stim_seen = 0
    for start in range(0, delay + 1, 256):
        stop = min(start + 256, delay + 1)
        window = as_np(long_task.render(spec, start, stop, rng))
        assert window.shape == (32, stop - start, 785)
        triggers += window[..., -1].sum()
        stim_seen += (
            (window[..., :-1] >= 0).all(axis=-1).sum()
        )  # clean images have no negative pixel
        target, weight = long_task.targets(spec, start, stop)
        assert as_np(target).shape == (32, stop - start)
    assert triggers == 32 and stim_seen == 32


def test_bad_batch_size_and_rng(task):
    with pytest.raises(ValueError, match="batch_size"):
        task.sample(0, np.random.default_rng())
    with pytest.raises(ValueError, match="rng"):
        task.sample(4, 1234)
    with pytest.raises(ValueError, match="start"):
        task.render(task.sample_spec(2, np.random.default_rng()), 5, 5, np.random.default_rng())


@pytest.mark.parametrize("n", [1, 7, 785, 1570])
def test_gaussian_rows_equal_one_generator_per_row(monkeypatch, n):
    """The vector env draws all sub-envs' noise in blocks of rows; row i must still be exactly
    what a single env with generator i draws, whatever the block boundaries."""
    monkeypatch.setattr(task_module, "GAUSSIAN_BLOCK_BYTES", 8 * n)  # blocks of 1-2 rows
    out_bxn = np.empty((5, n), np.float32)
    task_module.gaussian_fill_rows([np.random.default_rng(i) for i in range(5)], out_bxn, 0.1, 2.0)
    for i, row in enumerate(out_bxn):
        alone = np.empty(n, np.float32)
        task_module.gaussian_fill(np.random.default_rng(i), alone, 0.1, 2.0)
        np.testing.assert_array_equal(row, alone)
    assert len({row.tobytes() for row in out_bxn}) == 5
    with pytest.raises(ValueError, match="2 generators for 5 rows"):
        task_module.gaussian_fill_rows([np.random.default_rng(0)] * 2, out_bxn, 0.0, 1.0)


@pytest.mark.parametrize("start, window", [(0, 20), (5, 7)])
def test_placement_is_the_same_in_every_backend(task, start, window):
    """CPU tensors are written through numpy; the torch indexing path (used on GPUs) and the
    numpy path must write the same values."""
    spec = task.sample_spec(300, torch.Generator().manual_seed(3))
    noise = torch.randn(300, window, task.obs_dim, generator=torch.Generator().manual_seed(4))
    on_cpu, by_torch_indexing = noise.clone(), noise.clone()
    in_numpy = noise.numpy().copy()
    task.place(on_cpu, spec, start)
    task._place_torch(by_torch_indexing, spec, start)
    spec_numpy = type(spec)(*(as_np(x) for x in vars(spec).values()))
    task.place(in_numpy, spec_numpy, start)
    assert torch.equal(on_cpu, by_torch_indexing)
    np.testing.assert_array_equal(on_cpu.numpy(), in_numpy)
    assert not torch.equal(on_cpu, noise)  # something was placed


def test_absurd_batches_are_refused_before_allocating(task):
    """A batch whose arrays would not fit is refused with its computed size, before anything
    is allocated (tracemalloc sees no more than a few kilobytes)."""
    spec = task.sample_spec(2, np.random.default_rng(0))
    calls = {
        "sample(batch_size=1000000000)": lambda: task.sample(10**9, np.random.default_rng()),
        "sample(batch_size=1000000)": lambda: task.sample(10**6, torch.Generator()),
        "sample_spec(batch_size=1000000000000000)": lambda: task.sample_spec(
            10**15, np.random.default_rng()
        ),
        "render of 2 trials x 1000000000000 steps": lambda: task.render(
            spec, 0, 10**12, np.random.default_rng()
        ),
    }
    tracemalloc.start()
    try:
        for what, call in calls.items():
            with pytest.raises(
                UsageError, match="would allocate about .* over the limit"
            ) as caught:
                call()
            assert str(caught.value).startswith(what)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    message = str(caught.value)
    assert f"{2 * 10**12 * 785 * 8:,} bytes" in message and "MEMENV_MAX_BYTES" in message


def test_sample_memory_estimate_bounds_what_sampling_allocates(task):
    for batch_size, n_steps in [(64, 20), (300, 20), (32, 200)]:
        long_task = task.with_config(TaskConfig(n_steps=n_steps, t_max=20))
        estimates = []
        real_check = task_module.check_bytes

        def spy(n_bytes, what, estimates=estimates, real_check=real_check):
            estimates.append(n_bytes)
            real_check(n_bytes, what)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(task_module, "check_bytes", spy)
            tracemalloc.start()
            try:
                long_task.sample(batch_size, np.random.default_rng(0))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert peak <= estimates[0] <= 1.2 * peak


def test_a_given_obs_buffer_is_not_counted(task, monkeypatch):
    b, t, d = 16, 20, task.obs_dim
    without_frames = b * (task_module.SPEC_BYTES_PER_TRIAL + t * task_module.TARGET_BYTES_PER_STEP)
    # numpy draws float32 uniforms for the noise even into a given buffer
    monkeypatch.setenv("MEMENV_MAX_BYTES", str(without_frames + 4 * b * t * d))
    task.sample(b, np.random.default_rng(0), obs_out=np.empty((b, t, d), np.float32))
    with pytest.raises(UsageError, match="sample"):
        task.sample(b, np.random.default_rng(0))


def test_batch_size_of_any_integer_type_but_no_bool_or_float(task):
    assert task.sample(np.int64(3), np.random.default_rng(0)).batch_size == 3
    assert task.sample_spec(np.uint8(2), np.random.default_rng(0)).batch_size == 2
    for bad in (True, 3.0, "3", None, -1):
        with pytest.raises(UsageError, match="batch_size must be a positive integer"):
            task.sample(bad, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"download": "yes"}, ArgumentTypeError, "download must be True or False, got 'yes'"),
        ({"download": 1}, ArgumentTypeError, "download must be True or False, got 1"),
        ({"root": 5}, ArgumentTypeError, "root must be None or a path .* got 5 \\(int\\)"),
        ({"root": b"/data"}, ArgumentTypeError, "root must be None or a path"),
        ({"root": "a\x00b"}, UsageError, "root must not contain a NUL character"),
    ],
)
def test_data_source_arguments_are_checked_before_loading(kwargs, error, message, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("images were loaded before the arguments were checked")

    monkeypatch.setattr(task_module, "load_images", refuse)
    with pytest.raises(error, match=message):
        DelayedRecallTask(TaskConfig(), **kwargs)


def test_images_must_be_an_image_set():
    with pytest.raises(UsageError, match="images must be an ImageSet"):
        DelayedRecallTask(TaskConfig(), images=np.zeros((10, 784), np.uint8))
