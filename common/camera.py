"""The pinhole camera of one image: its size, focal lengths and principal point, in pixels.

Pixel convention (the renderer's, OpenCV's): pixel centres at integer coordinates, camera frame with x right,
y down, z forward; a point (X, Y, Z) projects to (fx X / Z + cx, fy Y / Z + cy).
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    focal: tuple      # (fx, fy); one number is taken for both
    princpt: tuple    # (cx, cy)

    def __post_init__(self):
        fx, fy = (float(v) for v in np.broadcast_to(np.asarray(self.focal, np.float64).ravel(), (2,)))
        cx, cy = (float(v) for v in np.asarray(self.princpt, np.float64).ravel())
        if not (fx > 0 and fy > 0 and math.isfinite(fx) and math.isfinite(fy)):
            raise ValueError(f'focal lengths must be positive, got {fx}, {fy}')
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise ValueError(f'the principal point must be finite, got {cx}, {cy}')
        width, height = int(self.width), int(self.height)
        if width <= 0 or height <= 0:
            raise ValueError(f'image size must be positive, got {width}x{height}')
        for name, value in (('width', width), ('height', height), ('focal', (fx, fy)), ('princpt', (cx, cy))):
            object.__setattr__(self, name, value)

    @classmethod
    def centred(cls, focal, width, height):
        """The principal point at the image's centre."""
        return cls(width, height, focal, ((width - 1) / 2.0, (height - 1) / 2.0))

    def project(self, pts):
        """[..., 3] camera-frame points -> [..., 2] pixels."""
        pts = np.asarray(pts, np.float64)
        z = np.maximum(pts[..., 2], 1e-6)
        return np.stack([self.focal[0] * pts[..., 0] / z + self.princpt[0],
                         self.focal[1] * pts[..., 1] / z + self.princpt[1]], -1)

    def outside(self, pts):
        """[N] bool: the points [N, 3] (camera frame) that project outside the image."""
        uv = self.project(pts)
        return ~((uv[:, 0] >= 0) & (uv[:, 0] < self.width) & (uv[:, 1] >= 0) & (uv[:, 1] < self.height))

    def crop(self, img2crop, crop_size):
        """The camera that renders a crop of this image directly (CropCamera).

        img2crop: 2x3 affine from image pixel indices to crop pixel indices (cv2.warpAffine's matrix); crop_size:
        (width, height) as warpAffine's dsize, or one int for a square crop. The affine's 2x2 part times
        diag(fx, fy) is factored as [[fx', skew], [0, fy']] @ rotation (an RQ decomposition); the renderer has no
        skew, so the result is exact when skew == 0: a similarity (scale + rotation) with fx == fy, or any scale
        with a rotation by a multiple of 90 degrees. Otherwise the skew term is dropped (|skew| / fx' is returned
        so the caller can judge; it is of the order of |fx - fy| / f, well below a pixel across a crop for real
        cameras).
        """
        w, h = (int(crop_size), int(crop_size)) if np.ndim(crop_size) == 0 else (int(s) for s in crop_size)
        a = np.asarray(img2crop, np.float64).reshape(2, 3).copy()
        fx, fy = self.focal
        det = np.linalg.det(a[:, :2])
        if not np.isfinite(det) or abs(det) < 1e-12:
            raise ValueError(f'img2crop is singular: {a.tolist()}')
        flip = det < 0
        if flip:  # render the unflipped crop, mirrored back by the caller: u -> (w - 1) - u in index coordinates
            a = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ a
            a[0, 2] += w - 1
        # cv2's affine acts on pixel indices = pixel centres, the renderer's convention too: no half-pixel terms
        m, t = a[:, :2], a[:, 2]
        b = m @ np.diag([fx, fy])
        d = math.hypot(b[1, 0], b[1, 1])
        sn, cs = b[1, 0] / d, b[1, 1] / d
        q = np.array([[cs, -sn], [sn, cs]])
        up = b @ q.T   # [[fx', skew], [0, fy']]
        rot = np.eye(3)
        rot[:2, :2] = q
        pp = m @ np.array(self.princpt) + t
        camera = Camera(w, h, (float(up[0, 0]), float(d)), (float(pp[0]), float(pp[1])))
        return CropCamera(camera, rot, bool(flip), float(abs(up[0, 1]) / up[0, 0]), abs(float(det)))


class CropCamera(NamedTuple):
    """Render the vertices turned by `rot` ([3, 3], applied to camera-frame vertices) with `camera`, then mirror
    the columns when `flip` (pixel u <-> width - 1 - u): that is the crop. skew: the dropped skew over fx' (0 for
    an exact crop). area_scale: the affine's |det|, what an area in image px^2 is multiplied by in the crop."""
    camera: Camera
    rot: np.ndarray
    flip: bool
    skew: float
    area_scale: float
