"""FoG building blocks: the decoupled swap and TD(lambda) targets."""

from __future__ import annotations

import pytest
import torch

from fog_pipeline.core.policy import decoupled, td_lambda
from fog_pipeline.core.surrogate.rssm import LatentState, straight_through


def test_swap_gives_global_values_and_surrogate_chain_gradient():
    """Two steps of x_{t+1} = f(x_t, a_t): "global" f_G and a close-but-wrong "surrogate"
    f_S with known Jacobians. Forward values must be f_G's, the gradient of the final
    state w.r.t. the actions the analytic chain of f_S's Jacobians evaluated at f_G's
    trajectory."""
    A_g, B_g = torch.tensor([[0.9, 0.1], [0.0, 1.1]]), torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    A_s, B_s = torch.tensor([[0.8, 0.0], [0.1, 1.0]]), torch.tensor([[1.2, 0.1], [0.4, 0.9]])

    def f_global(x, a):  # nonlinear, so the Jacobian depends on where it is taken
        return torch.tanh(x @ A_g.T + a @ B_g.T)

    def f_surrogate(x, a):
        return torch.tanh(x) @ A_s.T + torch.sin(a) @ B_s.T

    x0 = torch.tensor([[0.3, -0.2]])
    actions = torch.tensor([[0.5, -0.4], [0.1, 0.7]], requires_grad=True)
    x, states = x0, []
    for t in range(2):
        with torch.no_grad():
            forward = f_global(x, actions[t : t + 1])
        x = decoupled(forward, f_surrogate(x, actions[t : t + 1]))
        states.append(x)
    # Values: exactly the global trajectory.
    expected = f_global(f_global(x0, actions[:1]), actions[1:2])
    torch.testing.assert_close(states[-1], expected.detach())
    # Gradient of sum(x_2) w.r.t. a_0 and a_1: d x_2/d a_1 = B_s diag(cos a_1);
    # d x_2/d a_0 = A_s diag(1 - tanh^2(x_1)) B_s diag(cos a_0), with x_1 the *global*
    # state: the surrogate's Jacobians taken at the global trajectory.
    states[-1].sum().backward()
    ones = torch.ones(2)
    x1_global = f_global(x0, actions[:1]).detach()[0]
    dx2_dx1 = A_s @ torch.diag(1 - torch.tanh(x1_global) ** 2)
    grad_a1 = (B_s @ torch.diag(torch.cos(actions[1].detach()))).T @ ones
    grad_a0 = (dx2_dx1 @ B_s @ torch.diag(torch.cos(actions[0].detach()))).T @ ones
    torch.testing.assert_close(actions.grad, torch.stack([grad_a0, grad_a1]))


def test_straight_through_latent_state_matches_the_tensor_swap():
    gradient = LatentState(h=torch.ones(1, 3, requires_grad=True), z=torch.zeros(1, 2))
    value = LatentState(h=torch.full((1, 3), 5.0), z=torch.full((1, 2), -1.0))
    swapped = straight_through(value, gradient)
    torch.testing.assert_close(swapped.h, value.h)
    (swapped.h * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    torch.testing.assert_close(gradient.h.grad, torch.tensor([[1.0, 2.0, 3.0]]))


def test_td_lambda_matches_a_hand_computation_with_a_termination():
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[10.0], [20.0], [30.0], [40.0]])  # V(s_0..s_3)
    dones = torch.tensor([[0.0], [1.0], [0.0]])  # the episode ends with step 1
    g2 = 3.0 + gamma * 40.0
    g1 = 2.0  # terminal: no bootstrap
    g0 = 1.0 + gamma * ((1 - lam) * 20.0 + lam * g1)
    expected = torch.tensor([[g0], [g1], [g2]])
    torch.testing.assert_close(td_lambda(rewards, values, dones, gamma, lam), expected)


@pytest.mark.parametrize(("lam", "kind"), [(0.0, "one-step"), (1.0, "monte-carlo")])
def test_td_lambda_limits(lam, kind):
    gamma = 0.5
    rewards = torch.tensor([[1.0], [1.0]])
    values = torch.tensor([[0.0], [4.0], [8.0]])
    dones = torch.zeros(2, 1)
    targets = td_lambda(rewards, values, dones, gamma, lam)
    if kind == "one-step":
        expected = rewards[:, 0] + gamma * values[1:, 0]
    else:
        expected = torch.tensor([1.0 + gamma * (1.0 + gamma * 8.0), 1.0 + gamma * 8.0])
    torch.testing.assert_close(targets[:, 0], expected)


def test_td_lambda_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="values \\(H\\+1, N\\)"):
        td_lambda(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), 0.99, 0.95)
