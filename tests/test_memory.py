"""Peak bytes held for backward, measured through saved-tensor hooks."""

import torch

from ablate.engine.memory import SavedTensorMeter


def test_meter_counts_saved_activations_and_releases_them_after_backward():
    meter = SavedTensorMeter()
    w = torch.nn.Parameter(torch.randn(64, 64))
    x = torch.randn(32, 64)
    with meter.track():
        h = torch.tanh(x @ w)  # saves x (not w: parameters are held anyway) and tanh's output
        loss = (h * h).sum()  # saves h (the same storage as tanh's output: counted once)
    assert meter.live == 2 * 32 * 64 * 4
    loss.backward()
    assert meter.live == 0
    assert meter.peak == 2 * 32 * 64 * 4


def test_freeing_a_graph_early_lowers_the_peak():
    """Back-propagating each half as soon as it is built (local learning) holds less
    than one graph over both halves (backprop)."""
    w1, w2 = torch.nn.Parameter(torch.randn(256, 256)), torch.nn.Parameter(torch.randn(256, 256))
    x = torch.randn(128, 256)

    def run(local):
        meter = SavedTensorMeter()
        with meter.track():
            h = torch.relu(x @ w1)
            if local:
                h.square().mean().backward()
                h = h.detach()
            torch.relu(h @ w2).square().mean().backward()
        return meter.peak

    assert run(local=True) < run(local=False)


def test_reset_peak_starts_from_what_is_live():
    meter = SavedTensorMeter()
    with meter.track():
        y = torch.randn(10, requires_grad=True).exp()
    meter.reset_peak()
    assert meter.peak == meter.live == 40
    y.sum().backward()
