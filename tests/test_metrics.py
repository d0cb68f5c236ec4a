"""Metric functions against hand-computed values."""
import math

import torch

from dpbench import metrics as M


def test_nrmse_perfect_and_mean_predictor():
    y = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 5.0, 0.1])
    assert M.nrmse(y, y) == 0.0
    mean_pred = y.mean(dim=0, keepdim=True).expand_as(y)
    assert abs(M.nrmse(mean_pred, y) - 1.0) < 1e-9  # predicting the mean gives NRMSE 1


def test_vpt_counts_steps_before_threshold_in_lyapunov_times():
    err = torch.tensor([[0.1, 0.2, 0.6, 0.1], [0.1, 0.1, 0.1, 0.1]])
    steps = M.valid_steps(err, 0.5)
    assert steps.tolist() == [2, 4]
    vpt = M.vpt_lyapunov_times(err, 0.5, dt=0.025, lyapunov=0.906)
    assert torch.allclose(vpt, torch.tensor([2, 4], dtype=torch.float64) * 0.025 * 0.906)


def test_recall_scores_ce_masks_accuracy_but_not_loss():
    logits = torch.full((1, 4, 3), -10.0)
    logits[0, torch.arange(4), torch.tensor([0, 0, 1, 2])] = 10.0
    target = torch.tensor([[0, 1, 1, 0]])
    mask = torch.tensor([[False, False, True, True]])
    s = M.recall_scores(logits, target, mask, "ce")
    assert s["accuracy"] == 0.5
    assert abs(s["cross_entropy"] - 10.0) < 1e-6  # two of four steps wrong by 20 nats each


def test_max_lag_at_and_mean_std():
    assert M.max_lag_at({5: 1.0, 10: 0.95, 20: 0.5, 50: 0.91}) == 50
    assert M.max_lag_at({5: 0.2}) == 0.0
    m, s = M.mean_std([1.0, 3.0])
    assert m == 2.0 and abs(s - math.sqrt(2)) < 1e-12
