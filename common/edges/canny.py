"""SEFD's Canny edge map (spec section 4.2), as reusable torch functions (any device, no grad needed).

SEFD's `canny_edge` module: RGB image in [0, 1] -> `bgr_to_rgb` (a channel reversal applied to an image
that is already RGB) -> grayscale (0.299, 0.587, 0.114 on the reversed channels, so effectively
0.114 R + 0.587 G + 0.299 B) -> `kornia.filters.canny` with its defaults (Gaussian 5x5, sigma 1,
un-normalised Sobel, non-maximum suppression) -> output[0], the NMS-thinned gradient MAGNITUDE:
continuous, not thresholded, can exceed 1. The hysteresis map (output[1]) is not used; since the
magnitude does not depend on the thresholds or the hysteresis, it is not computed here (the reference
computes and discards it, about 3x the cost at 1080x1920). Then a flat max filter (grayscale dilation).

Note (kornia's NMS, kept as is): a pixel survives only if its magnitude is STRICTLY larger than both
neighbours across the edge. A perfectly symmetric step between two pixel columns (an axis-aligned,
non-antialiased edge) gives the two columns equal magnitudes, so which of them survives depends on
float rounding; curved contours are not affected in practice.
"""
import torch
import torch.nn.functional as F

# ITU-R 601 luma weights, as kornia.color.rgb_to_grayscale
_GRAY = (0.299, 0.587, 0.114)


def to_grayscale(img, swap_rb=True):
    """[B,3,H,W] -> [B,1,H,W]; swap_rb reproduces SEFD's channel reversal before the conversion."""
    w = _GRAY[::-1] if swap_rb else _GRAY
    return w[0] * img[:, 0:1] + w[1] * img[:, 1:2] + w[2] * img[:, 2:3]


def canny_magnitude(img, low=0.1, high=0.2, kernel_size=5, sigma=1.0, swap_rb=True, eps=1e-6):
    """SEFD's Canny map: the NMS-thinned gradient magnitude of kornia's Canny.

    img: [B,3,H,W] RGB (or [B,1,H,W] gray) float in [0, 1], any device. low/high: kornia's hysteresis
    thresholds; they do not change the magnitude (validated only, as kornia does). swap_rb: SEFD's
    channel reversal before the grayscale conversion (default on, as in the reference).
    Returns [B,1,H,W] >= 0, same dtype and device (not clipped: values can exceed 1).
    """
    import kornia

    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f'canny_magnitude expects [B,3,H,W] or [B,1,H,W], got {list(img.shape)}')
    if not img.is_floating_point():
        raise ValueError(f'canny_magnitude expects a float image in [0, 1], got {img.dtype}')
    gray = to_grayscale(img, swap_rb) if img.shape[1] == 3 else img
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    s = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else tuple(sigma)
    magnitude, _ = kornia.filters.canny(gray, low, high, k, s, hysteresis=False, eps=eps)
    return magnitude


def max_filter(x, size):
    """Flat grayscale dilation (local max over a size x size square) of [B,C,H,W]; size 1 is a no-op.

    Equals kornia.morphology.dilation with a ones kernel (its default 'geodesic' border ignores the
    outside), which the reference uses.
    """
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(f'dilation size must be a positive odd number, got {size}')
    if size == 1:
        return x
    return F.max_pool2d(x, size, stride=1, padding=size // 2)


def canny_edge_map(img, dilation=5, clip=False, **canny_kwargs):
    """SEFD's student edge input: canny_magnitude then a dilation x dilation max filter (SEFD: 5),
    optionally clipped to [0, 1] (SEFD does not clip). [B,3,H,W] -> [B,1,H,W]."""
    with torch.no_grad():
        out = max_filter(canny_magnitude(img, **canny_kwargs), dilation)
    return out.clamp(0, 1) if clip else out
