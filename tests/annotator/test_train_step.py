"""cwpo.annotator.train._step: one optimizer step, and a non-finite loss stops before the weights."""

import pytest
import torch

from cwpo.annotator.train import _step
from cwpo.errors import ConfigError


class _Bar:
    def __init__(self):
        self.n = 0

    def set_postfix(self, **kw):
        pass

    def update(self, n):
        self.n += n


@pytest.mark.parametrize("what", ["SFT", "training"])
def test_non_finite_loss_is_one_line_and_leaves_the_weights(what):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    losses, bar = [0.5], _Bar()
    with pytest.raises(ConfigError, match=rf"{what} loss became nan at step 2; lower --lr"):
        _step(opt, (w * float("nan")).sum(), losses, bar, what)
    assert torch.equal(w.detach(), torch.ones(3)) and losses == [0.5] and bar.n == 0
    _step(opt, (w * 2).sum(), losses, bar, what)
    assert torch.allclose(w.detach(), torch.full((3,), 0.8)) and losses == [0.5, 6.0] and bar.n == 1
