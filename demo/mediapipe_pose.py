"""Every person in a photograph and their 2D pose, with the two BlazePose models inside the mediapipe 0.10.14 wheel
(pose detector, full landmark model) run by the LiteRT interpreter; nothing is downloaded.

    python demo/mediapipe_pose.py --out poses.json image1.jpg image2.jpg ...

Writes COCO keypoint annotations ({"images": [...], "annotations": [...]}, 17 COCO joints as x, y, score with
score = the landmark's visibility), the format demo.py reads with --pose-json, so a file written here can be edited
and fed back. demo.py runs this script in a subprocess with the folder requirements.sh unpacks the mediapipe wheel
and ai-edge-litert into (~/.cache/sefd/blazepose-mediapipe-0.10.14, or $SEFD_MEDIAPIPE_DIR) first on the path;
mediapipe itself is not imported. It imports neither torch nor the project.

Why not MediaPipe's own Pose solution: it keeps the single best of the detector's 2254 anchors, so it finds one
person per call. Here the detector's anchors are decoded directly, so one pass finds everyone the detector sees.
The detector finds people by their head and upper body at its 224 px input, so it runs on the whole image and on
overlapping windows (2/3 and 1/2 of the image's short side) where people are small; detections of all windows go
through one weighted non-maximum suppression. Each detection gives a rotated square region (centre: the hips,
size: the body circle x 1.25, up: hips -> the circle's top), as MediaPipe's pose graph makes it, on which the
landmark model runs; people whose landmark presence is low are dropped and two detections of one body merged.
A person cut by the frame is found as long as the detector sees their head or shoulders.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

# BlazePose's 33 landmarks -> COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles)
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
BODY_LANDMARKS = (11, 12, 23, 24)  # shoulders and hips
FACE_LANDMARKS = (0, 2, 5, 7, 8)  # nose, eyes, ears
DETECTOR = 'mediapipe/modules/pose_detection/pose_detection.tflite'
LANDMARKS = 'mediapipe/modules/pose_landmark/pose_landmark_full.tflite'
DET_SIZE, LMK_SIZE = 224, 256
# SSD anchors of the pose detector (MediaPipe's pose_detection graph): 5 layers, strides 8,16,32,32,32, two anchors
# per cell and layer, fixed size 1 -> 28x28x2 + 14x14x2 + 7x7x6 = 2254 anchors
ANCHOR_GRIDS = ((28, 2), (14, 2), (7, 6))
WINDOWS = (2 / 3, 1 / 2)  # window sides, fractions of the image's short side


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('images', nargs='+')
    ap.add_argument('--out', required=True, help='COCO keypoint json to write')
    ap.add_argument('--max-people', type=int, default=20)
    ap.add_argument('--min-detection', type=float, default=0.5, help='detector score to keep a detection')
    ap.add_argument('--min-presence', type=float, default=0.5, help='landmark model score to keep a person')
    ap.add_argument('--visible', type=float, default=0.5, help='visibility above which a landmark bounds the box')
    return ap.parse_args(argv)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -100.0, 100.0)))


def anchors():
    """[2254, 2] anchor centres (x, y) in [0, 1], in the detector's output order."""
    out = []
    for n, per_cell in ANCHOR_GRIDS:
        y, x = np.mgrid[0:n, 0:n]
        c = np.stack([(x + 0.5) / n, (y + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per_cell, 1).reshape(-1, 2))
    return np.concatenate(out)


class BlazePose:
    def __init__(self, model_dir, min_detection, min_presence):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except Exception as e:  # noqa: BLE001 - any import failure means the same thing: not installed right
            sys.stderr.write(f'MEDIAPIPE_IMPORT_ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}\n')
            sys.exit(3)
        paths = [os.path.join(model_dir, p) for p in (DETECTOR, LANDMARKS)]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            sys.stderr.write(f'MEDIAPIPE_IMPORT_ERROR missing model file {missing[0]}\n')
            sys.exit(3)
        self.det, self.lmk = (Interpreter(model_path=p, num_threads=max(1, min(4, os.cpu_count() or 1))) for p in paths)
        for it in (self.det, self.lmk):
            it.allocate_tensors()
        self.anchors = anchors()
        self.min_detection, self.min_presence = min_detection, min_presence
        outs = {tuple(o['shape'][1:]): o['index'] for o in self.det.get_output_details()}
        self.det_boxes, self.det_scores = outs[(len(self.anchors), 12)], outs[(len(self.anchors), 1)]
        outs = {tuple(o['shape'][1:]): o['index'] for o in self.lmk.get_output_details()}
        self.lmk_points, self.lmk_flag = outs[(39 * 5,)], outs[(1,)]

    def _run(self, it, x):
        it.set_tensor(it.get_input_details()[0]['index'], x[None].astype(np.float32))
        it.invoke()

    def detect(self, rgb, window):
        """Detections in one window (x0, y0, side) of rgb: [N, 13] = score, box x0 y0 x1 y1, 4 keypoints (image px)."""
        x0, y0, side = window
        s = DET_SIZE / side
        A = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)   # image -> detector input (zero border)
        x = cv2.warpAffine(rgb, A, (DET_SIZE, DET_SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
        self._run(self.det, x.astype(np.float32) / 127.5 - 1.0)
        raw = self.det.get_tensor(self.det_boxes)[0].astype(np.float64)
        score = sigmoid(self.det.get_tensor(self.det_scores)[0, :, 0].astype(np.float64))
        keep = score > self.min_detection
        raw, score, anc = raw[keep], score[keep], self.anchors[keep]
        if not len(score):
            return np.zeros((0, 13))
        xy = raw[:, [0, 1]] / DET_SIZE + anc                      # box centre, normalised
        wh = raw[:, [2, 3]] / DET_SIZE
        kps = raw[:, 4:12].reshape(-1, 4, 2) / DET_SIZE + anc[:, None]
        to_img = lambda p: p * DET_SIZE / s + np.array([x0, y0])  # noqa: E731
        box = np.concatenate([to_img(xy - wh / 2), to_img(xy + wh / 2)], 1)
        return np.concatenate([score[:, None], box, to_img(kps).reshape(-1, 8)], 1)

    def landmarks(self, rgb, k0, k1):
        """In the region of hips centre k0 and body-circle top k1 (image px): the 33 landmarks [33, 3] (x, y,
        visibility; image px), the presence score and the model's own (k0, k1) for a refined region."""
        v = k1 - k0
        r = max(float(np.linalg.norm(v)), 1.0)
        up = v / r
        side = 2.0 * r * 1.25
        ax, ay = np.array([-up[1], up[0]]), -up     # the region's x and y (down) axes in the image
        # region pixel p -> image: k0 + (p - LMK_SIZE/2) * side / LMK_SIZE along (ax, ay)
        B = np.zeros((2, 3))
        B[:, 0], B[:, 1] = ax * side / LMK_SIZE, ay * side / LMK_SIZE
        B[:, 2] = k0 - (ax + ay) * side / 2.0
        x = cv2.warpAffine(rgb, B, (LMK_SIZE, LMK_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._run(self.lmk, x.astype(np.float32) / 255.0)
        pts = self.lmk.get_tensor(self.lmk_points)[0].reshape(39, 5).astype(np.float64)
        flag = float(self.lmk.get_tensor(self.lmk_flag)[0, 0])
        presence = flag if 0.0 <= flag <= 1.0 else float(sigmoid(flag))
        xy = pts[:, :2] @ B[:, :2].T + B[:, 2]
        return np.concatenate([xy[:33], sigmoid(pts[:33, 3:4])], 1), presence, (xy[33], xy[34])


def windows(H, W):
    """(x0, y0, side): the whole image (letterboxed square), then overlapping square windows."""
    yield ((W - max(H, W)) / 2.0, (H - max(H, W)) / 2.0, float(max(H, W)))
    for frac in WINDOWS:
        side = frac * min(H, W)
        nx, ny = (max(1, int(np.ceil((L - side) / (side / 2))) + 1) for L in (W, H))
        for iy in range(ny):
            for ix in range(nx):
                yield (ix * (W - side) / max(1, nx - 1), iy * (H - side) / max(1, ny - 1), side)


def iou(a, b):
    lt, rb = np.maximum(a[:2], b[:, 1:3]), np.minimum(a[2:4], b[:, 3:5])
    inter = np.prod(np.clip(rb - lt, 0, None), 1)
    area = lambda x: np.prod(np.clip(x[..., 2:4] - x[..., :2], 0, None), -1)  # noqa: E731
    return inter / np.maximum(area(a[:4]) + area(b[:, 1:5]) - inter, 1e-9)


def weighted_nms(dets, thr=0.3):
    """MediaPipe's weighted NMS: each cluster (IoU > thr with its best) becomes its score-weighted mean."""
    dets = dets[np.argsort(-dets[:, 0])]
    out = []
    while len(dets):
        same = iou(dets[0, 1:5], dets) > thr
        same[0] = True
        w = dets[same, 0:1]
        merged = (dets[same] * w).sum(0) / w.sum()
        merged[0] = dets[0, 0]
        out.append(merged)
        dets = dets[~same]
    return np.stack(out) if out else np.zeros((0, 13))


def same_person(lm_a, k0_a, r_a, lm_b, _, k0_b, r_b):
    """Two refined detections of one body: one region (hips within a quarter of the body circle, sizes within 1.5x),
    or one head (nose, eyes and ears closer than 3/4 of the head's width: two heads never share a place, however
    much the bodies behind them overlap)."""
    if np.linalg.norm(k0_a - k0_b) < 0.25 * max(r_a, r_b) and 0.67 < r_a / max(r_b, 1.0) < 1.5:
        return True
    face = list(FACE_LANDMARKS)
    head = max(np.linalg.norm(lm_a[7, :2] - lm_a[8, :2]), np.linalg.norm(lm_b[7, :2] - lm_b[8, :2]), 1.0)
    return float(np.linalg.norm(lm_a[face, :2] - lm_b[face, :2], axis=1).mean()) < 0.75 * head


def find_people(model, rgb, max_people):
    """([(landmarks [33,3] px + visibility, score)] of the people in rgb (HxWx3 uint8), by detector score; whether
    there was another person beyond max_people).

    Each detection's region is refined once from the landmark model's own alignment points (landmarks 33, 34: hips
    centre, body-circle top; what MediaPipe tracks between video frames), so two detections of one body (its head
    and its torso found in different windows) converge on one region, and are merged there."""
    H, W = rgb.shape[:2]
    dets = [model.detect(rgb, w) for w in windows(H, W)]
    found = []
    for det in weighted_nms(np.concatenate(dets)):
        _, presence, (k0, k1) = model.landmarks(rgb, det[5:7], det[7:9])
        if presence < model.min_presence:
            continue
        lm, presence, (k0, k1) = model.landmarks(rgb, k0, k1)
        if presence < model.min_presence:
            continue
        r = np.linalg.norm(k1 - k0)
        if any(same_person(lm, k0, r, *f) for f in found):
            continue
        if len(found) == max_people:   # one more person than asked for: say so, keep max_people
            return [(lm, score) for lm, score, _, _ in found], True
        found.append((lm, presence * float(np.mean(lm[list(BODY_LANDMARKS), 2])), k0, r))
    return [(lm, score) for lm, score, _, _ in found], False


def person_box(lm, visible):
    vis = lm[:, 2] > visible
    pts = lm[vis, :2] if vis.sum() >= 2 else lm[:, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    args = parse_args(argv)
    model_dir = next((p for p in sys.path if os.path.isfile(os.path.join(p, DETECTOR))), '')
    model = BlazePose(model_dir, args.min_detection, args.min_presence)
    images, anns = [], []
    for i, path in enumerate(args.images):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:   # demo.py has read every image before; run alone, say which one is skipped
            sys.stderr.write(f'warning: cannot read {path} as an image: skipped\n')
            continue
        H, W = bgr.shape[:2]
        people, reached = find_people(model, np.ascontiguousarray(bgr[:, :, ::-1]), args.max_people)
        images.append({'id': i, 'file_name': path, 'width': W, 'height': H, 'max_people_reached': reached})
        for lm, score in people:
            kp = lm[list(MEDIAPIPE_TO_COCO17)]
            inside = (kp[:, 0] >= 0) & (kp[:, 0] <= W - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= H - 1)
            kp[~inside, 2] = 0.0  # a joint outside the image is not a detection
            anns.append({'id': len(anns), 'image_id': i, 'category_id': 1, 'bbox': person_box(lm, args.visible),
                         'keypoints': [round(float(v), 3) for v in kp.reshape(-1)],
                         'num_keypoints': int((kp[:, 2] > args.visible).sum()), 'score': round(score, 4)})
    db = {'info': {'detector': 'mediapipe 0.10.14 BlazePose detector (all anchors, windows) + full landmark model'},
          'images': images, 'annotations': anns, 'categories': [{'id': 1, 'name': 'person'}]}
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(db, f)
    os.replace(tmp, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
