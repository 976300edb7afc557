"""Guided-output L2 loss with the SNR weightings of Salimans & Ho."""
from torch import Tensor, nn

from mmdistill.diffusion import LOSS_WEIGHTINGS, bcast, native_loss_weight
from mmdistill.registry import MODELS


@MODELS.register_module()
class GuidedOutputL2Loss(nn.Module):
    """omega(lambda_t) * ||x_hat - x_target||^2, computed in the network's
    own parameterisation (see
    :func:`mmdistill.diffusion.native_loss_weight`), averaged over pixels
    and batch.

    Args:
        weighting: 'snr_trunc' (default, max(SNR, 1)), 'v_mse'
            (1 + SNR), 'snr' (SNR, i.e. eps-MSE) or 'constant' (x-MSE).
        loss_weight: multiplier.
    """

    def __init__(self, weighting: str = 'snr_trunc',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f'unknown loss weighting {weighting!r}; use one '
                             f'of {LOSS_WEIGHTINGS}')
        self.weighting, self.loss_weight = weighting, loss_weight

    def forward(self, pred: Tensor, target: Tensor, alpha: Tensor,
                sigma: Tensor, prediction_type: str) -> Tensor:
        """``pred`` and ``target`` are both in ``prediction_type`` space."""
        w = native_loss_weight(alpha, sigma, self.weighting, prediction_type)
        per_sample = (pred - target).pow(2).flatten(1).mean(1)
        return self.loss_weight * (bcast(w, per_sample) * per_sample).mean()
