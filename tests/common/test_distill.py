"""Distillation losses against independent numpy formulas and hand-computed cases, for several stage
selections; and what learns in a student (only the student, its gc blocks and loss weights)."""
import numpy as np
import pytest
import torch

from common.errors import UserError
from common.registry import DISTILL_LOSSES
from main.config import DistillConfig

CHANNELS = (3, 4, 5, 6)
SIZES = ((6, 6), (4, 4), (3, 3), (2, 2))


def feats(seed, b=2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, *hw, generator=g, dtype=torch.float64).float() for c, hw in zip(CHANNELS, SIZES)]


def build(name, stages=(3, 4), weights=(1.0, 2.0), temperature=1.0):
    cfg = DistillConfig(loss=name, stages=list(stages), weights=list(weights), temperature=temperature)
    return DISTILL_LOSSES.build(name, cfg, channels=CHANNELS)


# ---------------------------------------------------------------------------------------------- numpy references
def _np(x):
    return x.detach().double().numpy()


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_log_softmax_l1(s, t, T):
    return np.abs(log_softmax(s, 1) - log_softmax(t, 1)).mean()


def ref_l1(s, t, T):
    return np.abs(s - t).mean()


def ref_kd(s, t, T):
    lps, lpt = log_softmax(s / T, 1), log_softmax(t / T, 1)
    return (np.exp(lpt) * (lpt - lps)).sum() / s.shape[0] * T * T


def ref_at(s, t, T):
    def a(f):
        m = (f ** 2).mean(axis=1).reshape(f.shape[0], -1)
        return m / np.linalg.norm(m, axis=1, keepdims=True)
    return 100 * ((a(s) - a(t)) ** 2).mean()


def ref_cwd(s, t, T):
    B, C = s.shape[:2]
    total = 0.0
    for b in range(B):
        for c in range(C):
            ps = np.exp(log_softmax(s[b, c].ravel() / T, 0))
            pt = np.exp(log_softmax(t[b, c].ravel() / T, 0))
            total += (pt * np.log(pt / ps)).sum()
    return total / (B * C) * T * T


def ref_pkd(s, t, T):
    def z(f):
        mean = f.mean(axis=(0, 2, 3), keepdims=True)
        std = f.std(axis=(0, 2, 3), ddof=1, keepdims=True)
        return (f - mean) / (std + 1e-6)
    return ((z(s) - z(t)) ** 2).mean() / 2


def max_pool_to(f, hw):
    """Adaptive max pooling by explicit bins (PyTorch's bin rule: floor(i*H/h) .. ceil((i+1)*H/h))."""
    B, C, H, W = f.shape
    h, w = hw
    out = np.zeros((B, C, h, w))
    for i in range(h):
        for j in range(w):
            y0, y1 = (i * H) // h, -((-(i + 1) * H) // h)
            x0, x1 = (j * W) // w, -((-(j + 1) * W) // w)
            out[:, :, i, j] = f[:, :, y0:y1, x0:x1].max(axis=(2, 3))
    return out


def ref_fsp_pair(sa, sb, ta, tb):
    def G(a, b):
        if a.shape[2] * a.shape[3] > b.shape[2] * b.shape[3]:
            a = max_pool_to(a, b.shape[2:])
        n = a.shape[2] * a.shape[3]
        B, Ca, Cb = a.shape[0], a.shape[1], b.shape[1]
        g = np.zeros((B, Ca, Cb))
        for k in range(B):
            for i in range(Ca):
                for j in range(Cb):
                    g[k, i, j] = (a[k, i].ravel() * b[k, j].ravel()).sum() / n
        return g
    d = G(sa, sb) - G(ta, tb)
    return np.sqrt((d ** 2).sum(axis=1)).sum() / sa.shape[0]


REFS = {'log_softmax_l1': ref_log_softmax_l1, 'l1': ref_l1, 'kd': ref_kd, 'at': ref_at, 'cwd': ref_cwd,
        'pkd': ref_pkd, 'gc': ref_l1}   # gc blocks start as the identity: the L1 of the raw features
SELECTIONS = [((3, 4), (1.0, 2.0)), ((2, 3, 4), (0.5, 1.0, 2.0)), ((1, 2, 3, 4), (1.0, 1.0, 1.0, 3.0))]


@pytest.mark.parametrize('name', sorted(REFS))
@pytest.mark.parametrize('stages, weights', SELECTIONS)
def test_stage_losses_match_independent_formulas(name, stages, weights):
    T = 2.0 if name in ('kd', 'cwd') else 1.0
    loss = build(name, stages, weights, temperature=T)
    s, t = feats(0), feats(1)
    terms = loss(s, t)
    assert list(terms) == [f'distill_{name}_s{k}' for k in stages]
    for k, w in zip(stages, weights):
        expected = w * REFS[name](_np(s[k - 1]), _np(t[k - 1]), T)
        assert terms[f'distill_{name}_s{k}'].item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize('stages, weights', SELECTIONS)
def test_fsp_over_consecutive_pairs_divided_by_the_actual_batch(stages, weights):
    s, t = feats(2, b=3), feats(3, b=3)
    terms = build('fsp', stages, weights)(s, t)
    pairs = list(zip(stages, stages[1:]))
    assert list(terms) == [f'distill_fsp_s{a}s{b}' for a, b in pairs]
    for (a, b), w in zip(pairs, weights[1:]):
        expected = w * ref_fsp_pair(_np(s[a - 1]), _np(s[b - 1]), _np(t[a - 1]), _np(t[b - 1]))
        assert terms[f'distill_fsp_s{a}s{b}'].item() == pytest.approx(expected, rel=1e-4)


def test_hand_computed_cases():
    t = feats(4)
    shifted = [f + 0.5 for f in t]                 # every element 0.5 away
    assert build('l1')(shifted, t)['distill_l1_s4'].item() == pytest.approx(2 * 0.5)
    # log-softmax over channels ignores a shift common to all channels of a position
    assert build('log_softmax_l1')(shifted, t)['distill_log_softmax_l1_s3'].item() == pytest.approx(0, abs=1e-6)
    # two channels, one position, T = 1: KL([1/2,1/2] || softmax([0, log 3]) = [1/4, 3/4])
    s1 = [torch.zeros(1, 2, 1, 1)] * 3 + [torch.tensor([0.0, float(np.log(3))]).view(1, 2, 1, 1)]
    t1 = [torch.zeros(1, 2, 1, 1)] * 4
    kd = DISTILL_LOSSES.build('kd', DistillConfig(loss='kd', stages=[4], weights=[1.0]), channels=(2, 2, 2, 2))
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert kd(s1, t1)['distill_kd_s4'].item() == pytest.approx(expected, rel=1e-6)
    # attention maps are normalised: a feature scaled by 3 has the same attention
    assert build('at')([3 * f for f in t], t)['distill_at_s4'].item() == pytest.approx(0, abs=1e-8)
    # PKD standardises each channel: a per-channel affine change (positive scale) costs nothing
    affine = [f * torch.arange(1, f.shape[1] + 1).view(1, -1, 1, 1) + 7 for f in t]
    assert build('pkd')(affine, t)['distill_pkd_s3'].item() == pytest.approx(0, abs=1e-8)
    # CWD's spatial softmax ignores a per-channel shift
    per_channel = [f + torch.arange(f.shape[1]).view(1, -1, 1, 1) for f in t]
    assert build('cwd')(per_channel, t)['distill_cwd_s4'].item() == pytest.approx(0, abs=1e-6)


def test_gc_blocks_learn_and_change_the_loss():
    loss = build('gc', (3, 4), (1.0, 1.0))
    s, t = feats(5), feats(6)
    params = list(loss.parameters())
    assert params and all(p.requires_grad for p in params)
    total = sum(loss(s, t).values())
    total.backward()
    last = loss.blocks['4'].channel_add_conv[-1].weight
    assert last.grad is not None and last.grad.abs().sum() > 0   # the zero-initialised conv gets a gradient
    before = total.item()
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= 0.5 * p.grad
    assert sum(loss(s, t).values()).item() != pytest.approx(before)


def test_bad_selections_are_one_line():
    with pytest.raises(UserError, match='at least two'):
        build('fsp', (4,), (1.0,))
    with pytest.raises(UserError, match='one weight per stage'):
        build('l1', (3, 4), (1.0,))
    loss = build('l1')
    s = feats(0)
    t = [f[:, :, :1] for f in feats(1)]
    with pytest.raises(UserError, match='same model.backbone and model.input_size'):
        loss(s, t)
    assert DISTILL_LOSSES.names() == sorted(['log_softmax_l1', 'l1', 'kd', 'at', 'fsp', 'gc', 'cwd', 'pkd'])  # SEFD's


@pytest.mark.parametrize('stages, weights, says', [((3, 4), (1.0,), 'same length'), ((0, 4), (1.0, 1.0), '1..4'),
                                                   ((5,), (1.0,), '1..4'), ((3, 3), (1.0, 1.0), 'repeat')])
def test_a_bad_stage_selection_is_refused_by_the_config_and_by_the_loss_with_the_same_line(stages, weights, says):
    from main.config import load_config
    overrides = [f'distill.stages=[{",".join(map(str, stages))}]', f'distill.weights=[{",".join(map(str, weights))}]']
    with pytest.raises(UserError) as by_config:
        load_config(None, overrides)
    with pytest.raises(UserError) as by_loss:
        build('l1', stages, weights)
    assert says in str(by_config.value) and str(by_loss.value) in str(by_config.value)
    with pytest.raises(UserError, match='empty'):
        build('l1', (), ())
