"""A simulated bottom-up 2D pose detector (OpenPose-18 output), driven by what the camera can see.

Each joint's visibility is read from the scene render at its projection: outside the image; hidden by
an object occluder; hidden by another person (that person's surface is in front of the joint);
hidden by the person's own body (their surface is well in front of the joint: an arm across the
chest, the eyes of someone seen from behind); or visible. Then, like a real detector:
- visible joints: small jitter (proportional to the person's size), high confidence;
- self-occluded joints: more jitter, medium confidence, sometimes missed (face points mostly missed);
- joints hidden by a person: often missed, sometimes taken from that neighbour's same joint (a swap,
  the typical crowd error), otherwise guessed with large jitter and low confidence;
- joints hidden by an object: often missed, else guessed with low confidence;
- rare outliers anywhere in the person's box.
A missed joint is (0, 0, 0), as in OpenPose output. Confidences are in [0, 1].
"""
from dataclasses import dataclass

import numpy as np

from common.body.joint_sets import OPENPOSE18, SMPL30, mapping_indices

VISIBLE, SELF, PERSON, OBJECT, OUTSIDE = range(5)
STATUS_NAMES = ('visible', 'self', 'person', 'object', 'outside')
_FACE = np.array([OPENPOSE18.index(n) for n in ('Nose', 'R_Eye', 'L_Eye', 'R_Ear', 'L_Ear')])


def smpl30_to_openpose18(x):
    """[..., 30, D] SMPL-30 -> [..., 18, D] OpenPose-18, by joint name (all 18 exist in SMPL-30)."""
    src, dst = mapping_indices(SMPL30, OPENPOSE18)
    assert len(dst) == len(OPENPOSE18)
    out = np.zeros(x.shape[:-2] + (len(OPENPOSE18), x.shape[-1]), x.dtype)
    out[..., dst, :] = x[..., src, :]
    return out


def joint_status(uv, z, person, person_id, depth, occluder_mask, self_margin=0.12, other_margin=0.03):
    """Visibility code per joint ([J] int) of person `person` with pixels uv [J, 2] and depths z [J]."""
    h, w = person_id.shape
    status = np.full(len(uv), VISIBLE, np.int64)
    occluder = np.zeros(len(uv), np.int64) - 1
    for k, ((u, v), zj) in enumerate(zip(uv, z)):
        if not (0 <= u < w and 0 <= v < h):
            status[k] = OUTSIDE
            continue
        # the pixel whose centre is nearest (centres at integers, as in the renderer and cv2)
        c, r = min(int(u + 0.5), w - 1), min(int(v + 0.5), h - 1)
        if occluder_mask is not None and occluder_mask[r, c]:
            status[k] = OBJECT
            continue
        pid, d = person_id[r, c], depth[r, c]
        if pid >= 0 and pid != person and d < zj - other_margin:
            status[k], occluder[k] = PERSON, pid
        elif pid == person and d < zj - self_margin:
            status[k] = SELF
    return status, occluder


def simulate(rng, people_uv, people_status, people_occluder, people_scale, width, height, noise=1.0):
    """OpenPose-18 detections for every person: (list of [18, 3] (x, y, conf) arrays, number of swaps).

    people_uv: list of [18, 2] true projections; people_status / people_occluder: joint_status outputs
    in OpenPose order; people_scale: a size per person (pixels, e.g. the box diagonal); noise scales
    every error rate and jitter (0 = perfect detections of the visible joints).
    """
    out, swaps = [], 0
    for i in range(len(people_uv)):
        det, s = detect_person(rng, i, people_uv, people_status, people_occluder, people_scale, width, height, noise)
        out.append(det)
        swaps += s
    return out, swaps


def detect_person(rng, i, people_uv, people_status, people_occluder, people_scale, width, height, noise=1.0):
    """Person i's detection ([18, 3], number of swaps): `simulate` for one person, the same random stream.
    The synthetic set's loader replays it on training crops, so that the training input pose is drawn from the
    distribution the test split's recorded detections come from."""
    n = len(people_uv)
    uv, st, occ, s = people_uv[i], people_status[i], people_occluder[i], people_scale[i]
    det = np.zeros((len(uv), 3))
    swaps = 0
    for j in range(len(uv)):
        face = j in _FACE
        code = st[j]
        if code == OUTSIDE:
            continue
        if code == VISIBLE:
            p_miss, sigma, conf = 0.02 + (0.04 if face else 0), 0.012, rng.uniform(0.6, 0.95)
        elif code == SELF:
            p_miss, sigma, conf = (0.75 if face else 0.2), 0.03, rng.uniform(0.25, 0.65)
        elif code == OBJECT:
            p_miss, sigma, conf = 0.6, 0.07, rng.uniform(0.05, 0.4)
        else:
            p_miss, sigma, conf = 0.45, 0.07, rng.uniform(0.05, 0.4)
            k = occ[j]
            if 0 <= k < n and people_status[k][j] == VISIBLE:
                near = np.linalg.norm(people_uv[k][j] - uv[j]) < 0.3 * s
                if rng.random() < min(1.0, (0.4 if near else 0.12) * noise):
                    det[j] = [*(people_uv[k][j] + rng.normal(0, 0.015 * people_scale[k] * noise, 2)),
                              rng.uniform(0.3, 0.8)]
                    swaps += 1
                    continue
        if rng.random() < min(1.0, p_miss * noise):
            continue
        xy = uv[j] + rng.normal(0, sigma * s * noise, 2)
        if rng.random() < 0.01 * noise:  # an outlier somewhere on the person
            xy = uv[j] + rng.uniform(-0.3, 0.3, 2) * s
            conf = rng.uniform(0.05, 0.3)
        det[j] = [xy[0], xy[1], conf * (0.9 if face else 1.0)]
    # detections land inside the image, or are not made
    inside = (det[:, 0] >= 0) & (det[:, 0] < width) & (det[:, 1] >= 0) & (det[:, 1] < height)
    det[~inside] = 0
    det[:, 2] = np.clip(det[:, 2], 0, 1)
    return det, swaps


@dataclass
class DetectorScene:
    """What the detector was given for one image, kept to replay it (`detect`): every person's true OpenPose-18
    projections uv [n,18,2] (image px), joint status and occluder [n,18] (joint_status codes), scale [n], the
    image size and the noise scale."""
    uv: np.ndarray
    status: np.ndarray
    occluder: np.ndarray
    scale: np.ndarray
    width: int
    height: int
    noise: float = 1.0

    def detect(self, rng, i):
        """A fresh detection [18,3] (x, y, conf; image px) of person i."""
        return detect_person(rng, i, self.uv, self.status, self.occluder, self.scale, self.width, self.height,
                             self.noise)[0]
