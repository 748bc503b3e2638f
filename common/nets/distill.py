"""Feature distillation losses: the student's pose-guided backbone stages pulled toward the frozen teacher's.

    loss = DISTILL_LOSSES.build(name, cfg.distill, channels=backbone.out_channels)
    terms = loss(student_feats, teacher_feats)   # each the list of the four stages [B,C_k,H_k,W_k], k = 1..4
    # -> {'distill_<name>_s3': w_3 * L_3, 'distill_<name>_s4': w_4 * L_4}: scalars, already weighted

Only the stages in `distill.stages` are used, each weighted by its entry of `distill.weights` (fsp: one term
per consecutive pair of the selected stages, weighted by the deeper stage's weight). Teacher features are
detached; everything is computed in fp32, outside autocast. Notation: s, t are one stage of the student and
the teacher, B the batch size, C channels, N = H*W positions, softmax_c over channels at each position.

| name           | L_k (per stage, or per pair for fsp)                                                        |
|----------------|---------------------------------------------------------------------------------------------|
| log_softmax_l1 | mean |log softmax_c(s) - log softmax_c(t)|  (SEFD's released default: stages 3, 4; weights 1, 2) |
| l1             | mean |s - t|                                                                               |
| kd             | T^2 * sum softmax_c(t/T) * (log softmax_c(t/T) - log softmax_c(s/T)) / B  (KL, 'batchmean') |
| at             | 100 * mean_(b,n) (a(s) - a(t))^2,  a(f) = l2-normalise_n(mean_c f^2)  (attention transfer)  |
| fsp            | sum_(b,j) ||G(s_a,s_b) - G(t_a,t_b)||_2 over i / B,  G = F_a F_b^T / N (larger map max-pooled) |
| gc             | mean |g(s) - g(t)|, g = a learned GCNet context block per stage (in the optimizer, saved)  |
| cwd            | T^2 * sum_(b,c) KL(softmax_n(t_c/T) || softmax_n(s_c/T)) / (B*C)  (channel-wise distillation) |
| pkd            | mean (z(s) - z(t))^2 / 2,  z = per-channel standardisation over (B,H,W)  (PKD)              |
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.errors import UserError
from common.registry import DISTILL_LOSSES, stage_problem

AT_SCALE = 100.0  # the reference's attention-transfer factor


class StageLoss(nn.Module):
    """One term per selected stage: weight * stage_loss(student stage, teacher stage)."""
    name = ''

    def __init__(self, cfg, channels):
        super().__init__()
        stages, weights = list(cfg.stages), list(cfg.weights)
        problem = stage_problem(stages, weights) or (None if stages else 'distill.stages is empty: select stages 1..4')
        if problem:
            raise UserError(problem)
        if len(channels) != 4:
            raise ValueError(f'channels must be the four stage channel counts, got {channels}')
        self.stages, self.weights, self.channels = stages, weights, tuple(channels)
        self.temperature = float(cfg.temperature)

    def term_names(self):
        return [f'distill_{self.name}_s{k}' for k in self.stages]

    def stage_loss(self, s, t, k):
        raise NotImplementedError

    def terms(self, s_feats, t_feats):
        return {n: w * self.stage_loss(s_feats[k - 1], t_feats[k - 1], k)
                for n, k, w in zip(self.term_names(), self.stages, self.weights)}

    def forward(self, student_feats, teacher_feats):
        if len(student_feats) != 4 or len(teacher_feats) != 4:
            raise ValueError('distillation losses take the four backbone stages of student and teacher')
        for k in self.stages:
            if student_feats[k - 1].shape != teacher_feats[k - 1].shape:
                raise UserError(f'stage {k}: student feature {tuple(student_feats[k - 1].shape)} and teacher '
                                f'feature {tuple(teacher_feats[k - 1].shape)} differ; teacher and student need '
                                f'the same model.backbone and model.input_size')
        used = set(self.stages)   # cast only the stages in use: stage 1 alone is as large as the other three
        s = [f.float() if k + 1 in used else None for k, f in enumerate(student_feats)]
        t = [f.detach().float() if k + 1 in used else None for k, f in enumerate(teacher_feats)]
        with torch.autocast(student_feats[0].device.type, enabled=False):
            return self.terms(s, t)


@DISTILL_LOSSES.register('log_softmax_l1')
class LogSoftmaxL1(StageLoss):
    """SEFD's default: L1 between the channel log-softmaxes."""
    name = 'log_softmax_l1'

    def stage_loss(self, s, t, k):
        return (F.log_softmax(s, dim=1) - F.log_softmax(t, dim=1)).abs().mean()


@DISTILL_LOSSES.register('l1')
class L1(StageLoss):
    """L1 between the raw features."""
    name = 'l1'

    def stage_loss(self, s, t, k):
        return (s - t).abs().mean()


@DISTILL_LOSSES.register('kd')
class KD(StageLoss):
    """KL(teacher || student) of the channel softmaxes at temperature T, summed over C*H*W and divided by the
    batch size (KLDivLoss 'batchmean', as in the reference), times T^2."""
    name = 'kd'

    def stage_loss(self, s, t, k):
        T = self.temperature
        log_ps, log_pt = F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1)
        return (log_pt.exp() * (log_pt - log_ps)).sum() / s.shape[0] * T * T


def attention_map(f):
    """[B,C,H,W] -> [B,H*W]: mean over channels of f^2, L2-normalised per sample."""
    return F.normalize(f.pow(2).mean(dim=1).flatten(1), dim=1)


@DISTILL_LOSSES.register('at')
class AT(StageLoss):
    """Attention transfer (Zagoruyko & Komodakis): squared difference of the normalised attention maps,
    averaged over batch and positions, times 100 (the reference's scale)."""
    name = 'at'

    def stage_loss(self, s, t, k):
        return AT_SCALE * (attention_map(s) - attention_map(t)).pow(2).mean()


def fsp_matrix(fa, fb):
    """Flow of solution procedure (Yim et al.): G = F_a F_b^T / (h*w) in [B,C_a,C_b]; the larger map is
    adaptively max-pooled to the smaller one's size first."""
    if fa.shape[2:] != fb.shape[2:]:
        if fa.shape[2] * fa.shape[3] > fb.shape[2] * fb.shape[3]:
            fa = F.adaptive_max_pool2d(fa, fb.shape[2:])
        else:
            fb = F.adaptive_max_pool2d(fb, fa.shape[2:])
    n = fa.shape[2] * fa.shape[3]
    return torch.bmm(fa.flatten(2), fb.flatten(2).transpose(1, 2)) / n


@DISTILL_LOSSES.register('fsp')
class FSP(StageLoss):
    """FSP matrices over consecutive pairs of the selected stages (sorted): sum over (b, j) of the L2 norm
    over i of G_s - G_t, divided by the actual batch size (the reference divided by the configured one)."""
    name = 'fsp'

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        order = sorted(range(len(self.stages)), key=lambda i: self.stages[i])
        if len(order) < 2:
            raise UserError(f'distill.loss=fsp relates pairs of stages: give at least two distill.stages '
                            f'(got {self.stages})')
        self.pairs = [(self.stages[a], self.stages[b], self.weights[b]) for a, b in zip(order, order[1:])]

    def term_names(self):
        return [f'distill_fsp_s{a}s{b}' for a, b, _ in self.pairs]

    def terms(self, s, t):
        out = {}
        for name, (a, b, w) in zip(self.term_names(), self.pairs):
            g_s, g_t = fsp_matrix(s[a - 1], s[b - 1]), fsp_matrix(t[a - 1], t[b - 1])
            out[name] = w * torch.linalg.vector_norm(g_s - g_t, dim=1).sum() / s[a - 1].shape[0]
        return out


class ContextBlock(nn.Module):
    """GCNet global context block (attention pooling, channel-add fusion, bottleneck C/2 with LayerNorm).
    The last conv starts at zero, so the block starts as the identity; it is trained with the student."""

    def __init__(self, channels, ratio=0.5):
        super().__init__()
        planes = max(1, int(channels * ratio))
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(channels, planes, kernel_size=1), nn.LayerNorm([planes, 1, 1]), nn.ReLU(inplace=True),
            nn.Conv2d(planes, channels, kernel_size=1))
        nn.init.kaiming_normal_(self.conv_mask.weight, mode='fan_in', nonlinearity='relu')
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add_conv[-1].weight)
        nn.init.zeros_(self.channel_add_conv[-1].bias)

    def channel_add(self, x):
        """The [B,C,1,1] term the block adds to x (broadcast over positions)."""
        B, C = x.shape[:2]
        attn = F.softmax(self.conv_mask(x).flatten(1), dim=1)              # [B,N]
        context = torch.bmm(x.flatten(2), attn[:, :, None]).view(B, C, 1, 1)
        return self.channel_add_conv(context)

    def forward(self, x):
        return x + self.channel_add(x)


@DISTILL_LOSSES.register('gc')
class GC(StageLoss):
    """L1 between the student's and the teacher's features, each passed through the same learned GCNet
    context block of its stage (SEFD's GC loss, with blocks that actually learn)."""
    name = 'gc'

    def __init__(self, cfg, channels):
        super().__init__(cfg, channels)
        self.blocks = nn.ModuleDict({str(k): ContextBlock(self.channels[k - 1]) for k in self.stages})

    def stage_loss(self, s, t, k):
        block = self.blocks[str(k)]
        # block(s) - block(t) without building either output: (s - t) + (add(s) - add(t)), broadcast
        return ((s - t) + (block.channel_add(s) - block.channel_add(t))).abs().mean()


@DISTILL_LOSSES.register('cwd')
class CWD(StageLoss):
    """Channel-wise distillation (Shu et al. 2021): each channel's spatial softmax at temperature T,
    KL(teacher || student) summed over positions, averaged over batch and channels, times T^2."""
    name = 'cwd'

    def stage_loss(self, s, t, k):
        T = self.temperature
        log_ps, log_pt = F.log_softmax(s.flatten(2) / T, dim=2), F.log_softmax(t.flatten(2) / T, dim=2)
        return (log_pt.exp() * (log_pt - log_ps)).sum() / (s.shape[0] * s.shape[1]) * T * T


def standardise_channels(f, eps=1e-6):
    """Zero mean, unit (unbiased) standard deviation per channel over (B, H, W)."""
    mean = f.mean(dim=(0, 2, 3), keepdim=True)
    std = f.std(dim=(0, 2, 3), keepdim=True)
    return (f - mean) / (std + eps)


@DISTILL_LOSSES.register('pkd')
class PKD(StageLoss):
    """PKD (Cao et al. 2022): half the MSE between per-channel standardised features (Pearson correlation)."""
    name = 'pkd'

    def stage_loss(self, s, t, k):
        return (standardise_channels(s) - standardise_channels(t)).pow(2).mean() / 2


def build_distill_loss(distill_cfg, channels):
    """The configured loss module, or None for distill.loss=none (the edge-only student)."""
    if distill_cfg.loss == 'none':
        return None
    return DISTILL_LOSSES.build(distill_cfg.loss, distill_cfg, channels=channels)
