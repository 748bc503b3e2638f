"""SEFD's Canny edge map, as reusable torch functions (any device, no grad needed).

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
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from common.edges.base import EdgeEstimator
from common.registry import EDGES

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


def opencv_canny(patch, dilation=5, low=0.1, high=0.2, swap_rb=True):
    """OpenCV Canny of an HxWx3 RGB crop (uint8 or float, 0..255) -> HxW float32 in {0, 1}, dilated.

    The same pipeline as canny_magnitude (grayscale with the same channel order, Gaussian 5x5 sigma 1,
    3x3 Sobel, thresholds low/high on the gradient magnitude of the [0, 1] image), but its output is the
    binary hysteresis edge map, not the continuous NMS magnitude SEFD feeds its student.
    """
    img = np.asarray(patch, np.float32)
    w = _GRAY[::-1] if swap_rb else _GRAY
    gray = cv2.GaussianBlur(w[0] * img[..., 0] + w[1] * img[..., 1] + w[2] * img[..., 2], (5, 5), 1.0)
    # derivatives in float, handed to Canny as int16 (its API): thresholds are on the 0..255 scale
    dx = np.round(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)).astype(np.int16)
    dy = np.round(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)).astype(np.int16)
    edges = cv2.Canny(dx, dy, low * 255, high * 255, L2gradient=True)
    if dilation > 1:
        edges = cv2.dilate(edges, np.ones((dilation, dilation), np.uint8))
    return (edges > 0).astype(np.float32)


class KorniaCanny(EdgeEstimator):
    """SEFD's student edge: NMS Canny magnitude + max filter, batched on the model's device."""

    def __init__(self, dilation=5, low=0.1, high=0.2, swap_rb=True, clip=False):
        super().__init__()
        self.kw = dict(dilation=dilation, clip=clip, low=low, high=high, swap_rb=swap_rb)

    def edge(self, img):
        return canny_edge_map(img, **self.kw)


class OpenCVCanny(EdgeEstimator):
    """Binary OpenCV Canny edges (dilated), computed per sample in the loader workers."""
    in_loader = True

    def __init__(self, dilation=5, low=0.1, high=0.2, swap_rb=True):
        super().__init__()
        self.kw = dict(dilation=dilation, low=low, high=high, swap_rb=swap_rb)

    def numpy_edge(self, patch):
        return opencv_canny(patch, **self.kw)


@EDGES.register('canny')
def build_canny(edge_cfg):
    """edge.canny_impl: kornia (SEFD's magnitude, in the model) | opencv (binary edges, in the loader)."""
    kw = dict(dilation=edge_cfg.dilation, low=edge_cfg.canny_low, high=edge_cfg.canny_high,
              swap_rb=edge_cfg.canny_swap_rb)
    if edge_cfg.canny_impl == 'opencv':
        return OpenCVCanny(**kw)
    return KorniaCanny(clip=edge_cfg.canny_clip, **kw)
