"""The two slow-point searches: the paper's Adam descent and a batched Levenberg-Marquardt.

Both minimise the speed ``q(s) = ||r(s)||^2`` with ``r(s) = phi(F(s, x)) - phi(s)`` (see
`analysis.protocol`) for a batch of states at once, each state independently, and stop a state
as soon as its speed is at most ``speed_tol``.

* `adam_search` is the authors' procedure (docs/paper.md, "Slow points"): Adam on the summed speed (a sum, so that
  every state follows its own Adam trajectory), learning rate 1e-3 divided by 10 after 40,000
  of 100,000 iterations, hidden coordinates clipped to [-1, 1] after every step. The update is
  TensorFlow 1's ``AdamOptimizer`` (the authors' optimiser), written out so that converged
  states can leave the batch.
* `newton_search` is a projected Levenberg-Marquardt iteration on the residual ``r``: per
  state, solve ``(J^T J + lambda mu I) delta = -J^T r`` (Cholesky) with the Jacobian
  ``J = dr/ds`` in closed form for the built-in cells (`analysis.jacobians`, ``O(N^2)`` per
  state) and from one batched ``vmap(jacrev)`` for other models (``mu`` = mean of
  ``diag(J^T J)``). With small ``lambda`` this is
  Newton's method on ``F(s) = s`` (quadratic convergence near a fixed point); with large
  ``lambda`` it is gradient descent, safe far from one; where ``q`` has a local minimum above
  zero (a slow point that is not a fixed point) it converges to that minimum, where Newton's
  method on ``r = 0`` would wander off.
  The clip box is handled as in Bertsekas' projected Newton method: hidden coordinates within
  ``epsilon`` of the bound whose gradient points outwards form the active set and take a
  scaled gradient step, the others the damped Gauss-Newton step; the trial points lie on the
  projection arc ``clip(s + alpha delta)``, all ``alpha`` of `ARC_STEPS` evaluated in one
  batched call, and the largest ``alpha`` that lowers ``q`` is taken (``lambda /= 10`` after a
  full step, ``lambda *= 10`` and the same Jacobian again when none lowers it). This matters:
  under the mean frame the speed of a trained GRU often keeps falling towards saturation, so
  many searches run along the box, where a plain clipped step is bent and rejected again and
  again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from analysis.protocol import FlatDynamics
from memenv.errors import UsageError

ARC_STEPS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01)
"""Step lengths tried at once along the projection arc of each Newton step."""
ACTIVE_EPSILON = 1e-3
"""Largest distance to the clip bound at which a coordinate can join the active set."""

TF_ADAM_BETA1 = 0.9
TF_ADAM_BETA2 = 0.999
TF_ADAM_EPSILON = 1e-8


@dataclass
class SearchResult:
    """Raw output of one search (torch tensors on the model's device).

    Attributes:
        states_bxn: Final states.
        speeds_b: Final speeds ``q``.
        iterations_b: int64: iterations each state took (Adam: steps; Newton: Jacobians).
        seconds: Wall time of the search.
    """

    states_bxn: torch.Tensor
    speeds_b: torch.Tensor
    iterations_b: torch.Tensor
    seconds: float


def default_speed_tol(n_state: int, dtype: torch.dtype) -> float:
    """The speed a fixed point reaches in ``dtype``: ``N * (10 eps)^2``.

    About 1e-25 for N = 200 in float64 and 3e-10 in float32. A search stops a state once its
    speed is at most this.
    """
    eps = torch.finfo(dtype).eps
    return float(n_state * (10 * eps) ** 2)


def per_point_tol(speed_tol: Any, dynamics: FlatDynamics, n_points: int) -> torch.Tensor:
    """``speed_tol`` (None, a number or ``[B]`` values) as a ``[B]`` tensor."""
    if speed_tol is None:
        speed_tol = default_speed_tol(dynamics.n_state, dynamics.dtype)
    tol = torch.as_tensor(speed_tol, dtype=dynamics.dtype, device=dynamics.device)
    if tol.dim() == 0:
        return tol.expand(n_points).clone()
    if tol.shape != (n_points,):
        raise UsageError(
            f"speed_tol must be a number or [{n_points}] values, got {tuple(tol.shape)}"
        )
    return tol.clone()


def adam_search(
    dynamics: FlatDynamics,
    initial_bxn: torch.Tensor,
    x_1xd: torch.Tensor,
    *,
    iterations: int = 100_000,
    lr: float = 1e-3,
    lr_drop_at: int | None = 40_000,
    lr_drop_factor: float = 0.1,
    clip: float | None = 1.0,
    speed_tol: Any = None,
    progress: bool = False,
) -> SearchResult:
    """The paper's Adam descent on ``q``, batched; see the module docstring.

    Args:
        dynamics: The model as a flat map.
        initial_bxn: Start states.
        x_1xd: The fixed input.
        iterations: Adam steps (paper: 100,000).
        lr: Learning rate (paper: 1e-3).
        lr_drop_at: Iteration at which the learning rate is multiplied by ``lr_drop_factor``
            (paper: 40,000); None for a constant rate.
        lr_drop_factor: Paper: 0.1.
        clip: Hidden coordinates are clipped to ``[-clip, clip]`` after each step (paper: 1);
            None to disable.
        speed_tol: A state leaves the batch once ``q <= speed_tol`` (a number, or ``[B]`` per
            state); None = `default_speed_tol` (in practice Adam then runs all
            ``iterations``, as the paper).
        progress: Show a tqdm bar.
    """
    if iterations < 0:
        raise UsageError(f"iterations must be >= 0, got {iterations}")
    start_time = time.perf_counter()
    n_points = initial_bxn.shape[0]
    tol_b = per_point_tol(speed_tol, dynamics, n_points)
    states_bxn = dynamics.clip(initial_bxn.detach().clone(), clip)
    speeds_b = dynamics.speed(states_bxn, x_1xd)
    iterations_b = torch.zeros(n_points, dtype=torch.int64, device=states_bxn.device)
    active_a = torch.nonzero(speeds_b > tol_b).squeeze(1)
    active_states = states_bxn[active_a]
    m_axn = torch.zeros_like(active_states)
    v_axn = torch.zeros_like(active_states)
    bar = tqdm(total=iterations, desc="adam slow points", disable=not progress, leave=False)
    for step in range(1, iterations + 1):
        if active_a.numel() == 0:
            break
        rate = lr * (lr_drop_factor if lr_drop_at is not None and step > lr_drop_at else 1.0)
        active_states.requires_grad_(True)
        with torch.enable_grad():
            speed_a = dynamics.residual(active_states, x_1xd).square().sum(dim=1)
            (grad_axn,) = torch.autograd.grad(speed_a.sum(), active_states)
        active_states = active_states.detach()
        speed_a = speed_a.detach()
        # speed_a belongs to the states before this update: record, then retire converged ones
        speeds_b[active_a] = speed_a
        done = speed_a <= tol_b[active_a]
        if done.any():
            states_bxn[active_a[done]] = active_states[done]
            keep = ~done
            active_a, active_states = active_a[keep], active_states[keep]
            m_axn, v_axn, grad_axn = m_axn[keep], v_axn[keep], grad_axn[keep]
            if active_a.numel() == 0:
                break
        m_axn.mul_(TF_ADAM_BETA1).add_(grad_axn, alpha=1 - TF_ADAM_BETA1)
        v_axn.mul_(TF_ADAM_BETA2).addcmul_(grad_axn, grad_axn, value=1 - TF_ADAM_BETA2)
        step_rate = rate * math.sqrt(1 - TF_ADAM_BETA2**step) / (1 - TF_ADAM_BETA1**step)
        active_states = active_states - step_rate * m_axn / (v_axn.sqrt() + TF_ADAM_EPSILON)
        active_states = dynamics.clip(active_states, clip)
        iterations_b[active_a] = step
        bar.update(1)
    bar.close()
    if active_a.numel():
        states_bxn[active_a] = active_states
    speeds_b = dynamics.speed(states_bxn, x_1xd)
    return SearchResult(states_bxn, speeds_b, iterations_b, time.perf_counter() - start_time)


def newton_search(
    dynamics: FlatDynamics,
    initial_bxn: torch.Tensor,
    x_1xd: torch.Tensor,
    *,
    max_iterations: int = 50,
    clip: float | None = 1.0,
    speed_tol: Any = None,
    initial_damping: float = 1e-3,
    max_damping: float = 1e12,
    relative_tol: float | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SearchResult:
    """Batched Levenberg-Marquardt on ``r(s) = phi(F(s)) - phi(s)``; see the module docstring.

    A state stops when ``q <= speed_tol`` (a fixed point), when its accepted step no longer
    lowers ``q`` by more than ``relative_tol`` of itself and no longer moves it by more than
    ``relative_tol`` (a local minimum of ``q``), when ``lambda`` exceeds ``max_damping`` (no
    descent left at working precision), or after ``max_iterations`` Jacobians.

    Args:
        dynamics: The model as a flat map.
        initial_bxn: Start states.
        x_1xd: The fixed input.
        max_iterations: Jacobian evaluations per state at most.
        clip: Hidden coordinates of every trial point are clipped to ``[-clip, clip]`` (as the
            Adam search; fixed points of tanh cells lie inside anyway); None to disable.
        speed_tol: A number, or ``[B]`` per state; None = `default_speed_tol`.
        initial_damping: Starting ``lambda``, relative to ``mu = mean(diag(J^T J))``.
        max_damping: See above.
        relative_tol: None = ``sqrt(eps)`` of the dtype.
        chunk_size: States solved together (bounds the ``[chunk, N, N]`` Jacobians);
            None = `FlatDynamics.default_chunk_size`.
        progress: Show a tqdm bar over chunks.
    """
    if max_iterations < 0:
        raise UsageError(f"max_iterations must be >= 0, got {max_iterations}")
    if relative_tol is None:
        relative_tol = math.sqrt(torch.finfo(dynamics.dtype).eps)
    start_time = time.perf_counter()
    tol_b = per_point_tol(speed_tol, dynamics, initial_bxn.shape[0])
    chunk_size = chunk_size or dynamics.default_chunk_size()
    results = []
    chunks = list(zip(initial_bxn.split(chunk_size), tol_b.split(chunk_size), strict=True))
    for chunk, tol_c in tqdm(chunks, desc="newton slow points", disable=not progress, leave=False):
        results.append(
            _lm_chunk(
                dynamics,
                chunk,
                x_1xd,
                max_iterations=max_iterations,
                clip=clip,
                tol_b=tol_c,
                initial_damping=initial_damping,
                max_damping=max_damping,
                relative_tol=relative_tol,
            )
        )
    states_bxn = torch.cat([r[0] for r in results])
    iterations_b = torch.cat([r[1] for r in results])
    speeds_b = dynamics.speed(states_bxn, x_1xd)
    return SearchResult(states_bxn, speeds_b, iterations_b, time.perf_counter() - start_time)


def _damped_solve(
    normal_bxnxn: torch.Tensor,
    gradient_bxn: torch.Tensor,
    damping_b: torch.Tensor,
    free_bxn: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``delta`` solving ``(J^T J + damping I) delta = -J^T r`` on the free coordinates (0 on
    the others), and a ``[B]`` flag for singular systems (their delta is 0).

    The system is symmetric positive definite (damping > 0), so a Cholesky factorisation
    solves it (half the work of LU); a failed factorisation marks the system singular."""
    if bool(free_bxn.all()):
        system = normal_bxnxn.clone()
    else:
        system = normal_bxnxn * (free_bxn[:, :, None] & free_bxn[:, None, :])
    system.diagonal(dim1=1, dim2=2).add_(torch.where(free_bxn, damping_b[:, None], 1.0))
    factor, info_b = torch.linalg.cholesky_ex(system)
    delta_bxn = torch.cholesky_solve((-gradient_bxn * free_bxn)[..., None], factor)[..., 0]
    singular = (info_b != 0) | ~torch.isfinite(delta_bxn).all(dim=1)
    if singular.any():
        delta_bxn = torch.where(singular[:, None], 0.0, delta_bxn)
    return delta_bxn, singular


def _arc_search(
    dynamics: FlatDynamics,
    s_axn: torch.Tensor,
    delta_axn: torch.Tensor,
    q_a: torch.Tensor,
    x_1xd: torch.Tensor,
    clip: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first point of ``P(s + alpha delta)``, alpha in `ARC_STEPS`, with a speed below
    ``q`` (the full step's point when none is): ``(points, speeds, took_full_step)``."""
    n_alpha, (n_points, n_state) = len(ARC_STEPS), s_axn.shape
    alphas = torch.tensor(ARC_STEPS, dtype=s_axn.dtype, device=s_axn.device)
    trial_kxaxn = dynamics.clip(s_axn + alphas[:, None, None] * delta_axn, clip)
    with torch.no_grad():
        flat = trial_kxaxn.reshape(n_alpha * n_points, n_state)
        q_kxa = dynamics.residual(flat, x_1xd).square().sum(dim=1).reshape(n_alpha, n_points)
    better_kxa = (q_kxa < q_a) & torch.isfinite(q_kxa)
    first_a = torch.where(better_kxa.any(dim=0), better_kxa.double().argmax(dim=0), 0)
    rows = torch.arange(n_points, device=s_axn.device)
    return trial_kxaxn[first_a, rows], q_kxa[first_a, rows], first_a == 0


def _lm_chunk(
    dynamics: FlatDynamics,
    initial_bxn: torch.Tensor,
    x_1xd: torch.Tensor,
    *,
    max_iterations: int,
    clip: float | None,
    tol_b: torch.Tensor,
    initial_damping: float,
    max_damping: float,
    relative_tol: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Levenberg-Marquardt for one chunk of states; returns ``(states, iterations)``."""
    n_points, n_state = initial_bxn.shape
    device = initial_bxn.device
    states_bxn = dynamics.clip(initial_bxn.detach().clone(), clip)
    iterations_b = torch.zeros(n_points, dtype=torch.int64, device=device)
    with torch.no_grad():
        speeds_b = dynamics.residual(states_bxn, x_1xd).square().sum(dim=1)
    active_a = torch.nonzero(speeds_b > tol_b).squeeze(1)
    if active_a.numel() == 0 or max_iterations == 0:
        return states_bxn, iterations_b
    # per active state: residual, Jacobian, damping; the Jacobian is reused after a rejection
    s_axn = states_bxn[active_a]
    r_axn, j_axnxn = dynamics.residual_and_jacobian(s_axn, x_1xd)
    q_a = r_axn.square().sum(dim=1)
    iterations_b[active_a] = 1
    damping_a = torch.full_like(q_a, initial_damping)
    tiny = torch.finfo(q_a.dtype).tiny
    while active_a.numel():
        jt_axnxn = j_axnxn.transpose(1, 2)
        normal_axnxn = jt_axnxn @ j_axnxn
        mu_a = normal_axnxn.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(tiny)
        gradient_axn = (jt_axnxn @ r_axn[..., None])[..., 0]
        # projected Levenberg-Marquardt (Bertsekas' projected Newton with an epsilon-active
        # set): coordinates within epsilon of the bound whose gradient points outwards take a
        # scaled gradient step, the others the damped Gauss-Newton step; the trial points lie
        # on the projection arc P(s + alpha delta), and the largest alpha that lowers q wins
        epsilon_a = (s_axn - dynamics.clip(s_axn - gradient_axn, clip)).norm(dim=1)
        epsilon_a = epsilon_a.clamp(max=ACTIVE_EPSILON)
        fixed_axn = dynamics.bound_active(s_axn, gradient_axn, clip, epsilon_a)
        delta_axn, singular = _damped_solve(
            normal_axnxn, gradient_axn, damping_a * mu_a, ~fixed_axn
        )
        scaled_gradient = gradient_axn / (mu_a * (1.0 + damping_a))[:, None]
        delta_axn = torch.where(fixed_axn, -scaled_gradient, delta_axn)
        candidate_axn, q_candidate_a, full_step = _arc_search(
            dynamics, s_axn, delta_axn, q_a, x_1xd, clip
        )
        accept = (q_candidate_a < q_a) & ~singular
        delta_axn = candidate_axn - s_axn
        small_step = delta_axn.norm(dim=1) <= relative_tol * (1.0 + s_axn.norm(dim=1))
        small_gain = (q_a - q_candidate_a) <= relative_tol * q_a
        shrink = accept & full_step
        damping_a = torch.where(shrink, (damping_a / 10).clamp_min(1e-12), damping_a)
        damping_a = torch.where(accept, damping_a, damping_a * 10)
        s_axn = torch.where(accept[:, None], candidate_axn, s_axn)
        q_a = torch.where(accept, q_candidate_a, q_a)
        fixed = q_a <= tol_b[active_a]
        stalled = accept & small_step & small_gain
        stuck = damping_a > max_damping
        out_of_budget = iterations_b[active_a] >= max_iterations
        finished = fixed | stalled | stuck | (accept & out_of_budget)
        if finished.any():
            states_bxn[active_a[finished]] = s_axn[finished]
            keep = ~finished
            active_a, s_axn, q_a = active_a[keep], s_axn[keep], q_a[keep]
            damping_a, accept = damping_a[keep], accept[keep]
            r_axn, j_axnxn = r_axn[keep], j_axnxn[keep]
        if active_a.numel() == 0:
            break
        refresh = torch.nonzero(accept).squeeze(1)
        if refresh.numel():
            r_new, j_new = dynamics.residual_and_jacobian(s_axn[refresh], x_1xd)
            r_axn[refresh] = r_new
            j_axnxn[refresh] = j_new
            iterations_b[active_a[refresh]] += 1
    return states_bxn, iterations_b
