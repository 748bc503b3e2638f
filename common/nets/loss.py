"""Task losses of 3DCrowdNet: masked element-wise L1, returned UN-reduced.

The caller picks the reduction. The reference takes `.mean()` over all elements, so masked-out entries
still count in the denominator (effective weights then depend on the batch's validity fractions).
"""
import torch
import torch.nn as nn


def _per_sample(m, ndim):
    """[B] or [B,1] per-sample flag -> [B,1,...] broadcastable against an ndim tensor."""
    return m.reshape(m.shape[0], *([1] * (ndim - 1)))


class CoordLoss(nn.Module):
    """|out - gt| * valid; with is_3D ([B] or [B,1]) the z column (index 2) is additionally times is_3D.

    out, gt [B,J,D]; valid broadcastable to them ([B,J,1] or [B,J,D]). Returns [B,J,D].
    """

    def forward(self, coord_out, coord_gt, valid, is_3D=None):
        loss = (coord_out - coord_gt).abs() * valid
        if is_3D is not None and loss.shape[-1] > 2:
            z = loss[..., 2:] * _per_sample(is_3D.to(loss.dtype), loss.dim())
            loss = torch.cat([loss[..., :2], z], dim=-1)
        return loss


class ParamLoss(nn.Module):
    """|out - gt| * valid for SMPL pose [B,72] / shape [B,10] parameters. Returns the same shape."""

    def forward(self, param_out, param_gt, valid):
        return (param_out - param_gt).abs() * valid


class UncertaintyWeighting(nn.Module):
    """Learned loss weights (Kendall et al. 2018; the multi-task weighting FuRPE uses):
    total = sum_i exp(-s_i) * L_i + s_i, with one s_i = log sigma_i^2 per term, starting at 0 (the plain sum).
    A term whose s_i grows is down-weighted; the + s_i keeps it from growing for free."""

    def __init__(self, names):
        super().__init__()
        self.log_vars = nn.ParameterDict({n: nn.Parameter(torch.zeros(())) for n in names})

    def forward(self, terms):
        unknown = set(terms) - set(self.log_vars)
        if unknown:
            raise KeyError(f'no learned weight for loss terms {sorted(unknown)}')
        return sum(torch.exp(-self.log_vars[k]) * v + self.log_vars[k] for k, v in terms.items())

    def weights(self):
        """{term: exp(-s_i)}, for the log."""
        return {k: float(torch.exp(-v.detach())) for k, v in self.log_vars.items()}
