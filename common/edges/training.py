"""Losses and score of the learned edge networks against rendered edge targets (the crops and their targets:
data/edge_crops.py; the training job: tool/experiments/train_edge.py).

Score: precision/recall of the edge map thresholded at 99 levels, pooled over the whole split, and the
best F-score over the thresholds (ODS). A predicted pixel is correct when a target pixel lies within r px
(square window, r = 0.75% of the crop diagonal as the BSDS benchmark's tolerance), a target pixel is
recalled when a prediction lies within r px. Simpler than the BSDS benchmark (no thinning, no one-to-one
matching): comparable between our runs, not to published BSDS numbers.
"""
import math

import torch
import torch.nn.functional as F

THRESHOLDS = torch.linspace(0.01, 0.99, 99)


def balanced_bce(logits, target, neg_weight=1.1):
    """HED/RCF's class-balanced cross-entropy, per image: edge pixels weighted by the fraction of non-edge
    pixels, non-edge pixels by neg_weight x the edge fraction (RCF's 1.1); mean over pixels."""
    pos = (target > 0.5).to(logits.dtype)
    frac = pos.mean(dim=(1, 2, 3), keepdim=True)
    weight = pos * (1 - frac) + (1 - pos) * neg_weight * frac
    return F.binary_cross_entropy_with_logits(logits.float(), pos.float(), weight=weight.float())


def edge_losses(out, batch):
    """{term: loss} for the network outputs (EdgeOutputs) of a batch: every edge map (side outputs and the
    fusion, deep supervision as HED/RCF/PiDiNet) and SEE's mask head (plain BCE)."""
    terms = {'edge_fuse': balanced_bce(out.edges[-1], batch['edge'])}
    if len(out.edges) > 1:
        terms['edge_sides'] = sum(balanced_bce(e, batch['edge']) for e in out.edges[:-1])
    if out.mask is not None:
        terms['mask'] = F.binary_cross_entropy_with_logits(out.mask.float(), batch['mask'].float())
    return terms


# ------------------------------------------------------------------------------------------ scoring

def tolerance_px(size):
    """The BSDS benchmark's match distance, 0.0075 x the image diagonal, at least 1 px."""
    return max(1, int(round(0.0075 * math.hypot(size, size))))


class EdgeScore:
    """Pooled precision/recall over thresholds; `add` batches, `result()` the ODS summary."""

    def __init__(self, radius, thresholds=THRESHOLDS):
        self.r, self.thr = radius, thresholds
        self.counts = torch.zeros(len(thresholds), 4, dtype=torch.float64)   # tp_pred, n_pred, tp_gt, n_gt
        self.mask_inter = self.mask_union = 0.0

    def add(self, prob, target, mask_prob=None, mask=None):
        k = 2 * self.r + 1
        gt = target > 0.5
        near_gt = F.max_pool2d(gt.float(), k, 1, self.r) > 0
        for t, thr in enumerate(self.thr.tolist()):
            pred = prob >= thr
            near_pred = F.max_pool2d(pred.float(), k, 1, self.r) > 0
            self.counts[t] += torch.tensor([(pred & near_gt).sum().item(), pred.sum().item(),
                                            (gt & near_pred).sum().item(), gt.sum().item()], dtype=torch.float64)
        if mask_prob is not None:
            m, g = mask_prob >= 0.5, mask > 0.5
            self.mask_inter += (m & g).sum().item()
            self.mask_union += (m | g).sum().item()

    def result(self):
        tp_p, n_p, tp_g, n_g = self.counts.unbind(1)
        precision = tp_p / n_p.clamp(min=1)
        recall = tp_g / n_g.clamp(min=1)
        f = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        best = int(f.argmax())
        out = {'ods': float(f[best]), 'threshold': float(self.thr[best]), 'precision': float(precision[best]),
               'recall': float(recall[best])}
        if self.mask_union:
            out['mask_iou'] = self.mask_inter / self.mask_union
        return out
