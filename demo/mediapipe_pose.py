"""People and their 2D poses with MediaPipe Pose (the models inside the mediapipe 0.10.14 wheel; no download).

    python demo/mediapipe_pose.py --out poses.json image1.jpg image2.jpg ...

Writes COCO keypoint annotations ({"images": [...], "annotations": [...]}, 17 COCO joints as x, y, score with
score = MediaPipe's landmark visibility), the format demo.py reads with --pose-json, so a file written here can be
edited and fed back. demo.py runs this script in a subprocess with the folder that requirements.sh installs
mediapipe into (~/.cache/sefd/mediapipe-0.10.14, or $SEFD_MEDIAPIPE_DIR) first on the path: mediapipe 0.10.14
needs protobuf < 5, the rest of the project protobuf >= 6. It imports neither torch nor the project.

Several people per image: MediaPipe's classic Pose finds one person per call (its BlazePose detector, then the
landmark model on that person's region, with a segmentation mask). After each person, their mask (dilated; their
landmark box where the mask is empty) is painted over with grey and the image searched again, until nobody is
found, a detection repeats one already found, or --max-people is reached. Masking the silhouette rather than the
box keeps the people behind someone visible.
"""
import argparse
import json
import os
import sys

# MediaPipe's 33 landmarks -> COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles)
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
BODY_LANDMARKS = (11, 12, 23, 24)  # shoulders and hips: where a repeated detection is recognised


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('images', nargs='+')
    ap.add_argument('--out', required=True, help='COCO keypoint json to write')
    ap.add_argument('--max-people', type=int, default=10)
    ap.add_argument('--min-detection', type=float, default=0.5, help='MediaPipe min_detection_confidence')
    ap.add_argument('--visible', type=float, default=0.5, help='visibility above which a landmark bounds the box')
    return ap.parse_args(argv)


def quiet_native_logs():
    os.environ.setdefault('GLOG_minloglevel', '2')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def load_mediapipe():
    quiet_native_logs()
    import warnings
    warnings.filterwarnings('ignore', category=UserWarning, module='google.protobuf')
    try:
        import mediapipe as mp
        from mediapipe.python.solutions import pose as mp_pose
    except Exception as e:  # noqa: BLE001 - any import failure means the same thing: not installed right
        sys.stderr.write(f'MEDIAPIPE_IMPORT_ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}\n')
        sys.exit(3)
    return mp, mp_pose


def same_person(a, b, frac=0.15):
    """Two landmark sets [33,3] (px) of one person: their shoulders and hips within frac of the body size."""
    import numpy as np
    pa, pb = a[list(BODY_LANDMARKS), :2], b[list(BODY_LANDMARKS), :2]
    size = max(np.ptp(a[:, 0]), np.ptp(a[:, 1]), 1.0)
    return float(np.linalg.norm(pa - pb, axis=1).mean()) < frac * size


def find_people(pose, rgb, max_people, visible):
    """[(landmarks [33,3] px + visibility, box [x,y,w,h])] of the people in rgb (HxWx3 uint8)."""
    import cv2
    import numpy as np
    H, W = rgb.shape[:2]
    work, found = rgb.copy(), []
    kernel = np.ones((max(3, int(0.02 * max(H, W))),) * 2, np.uint8)
    for _ in range(max_people):
        res = pose.process(work)
        if res.pose_landmarks is None:
            break
        lm = np.array([[p.x * W, p.y * H, p.visibility] for p in res.pose_landmarks.landmark], np.float64)
        if any(same_person(lm, f[0]) for f in found):
            break
        vis = lm[:, 2] > visible
        pts = lm[vis, :2] if vis.sum() >= 2 else lm[:, :2]
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        found.append((lm, [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]))
        mask = np.zeros((H, W), bool)
        if res.segmentation_mask is not None:
            mask = cv2.dilate((res.segmentation_mask > 0.5).astype(np.uint8), kernel) > 0
        if mask.sum() < 0.05 * max(1.0, (x1 - x0) * (y1 - y0)):
            mask[:] = False
            mask[max(0, int(y0)):max(0, int(y1) + 1), max(0, int(x0)):max(0, int(x1) + 1)] = True
        work[mask] = 127
    return found


def main(argv=None):
    args = parse_args(argv)
    import cv2
    import numpy as np
    mp, mp_pose = load_mediapipe()
    images, anns = [], []
    with mp_pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                      min_detection_confidence=args.min_detection) as pose:
        for i, path in enumerate(args.images):
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                continue  # demo.py has read every image before; nothing to add here
            H, W = bgr.shape[:2]
            images.append({'id': i, 'file_name': path, 'width': W, 'height': H})
            for lm, box in find_people(pose, np.ascontiguousarray(bgr[:, :, ::-1]), args.max_people, args.visible):
                kp = lm[list(MEDIAPIPE_TO_COCO17)]
                inside = (kp[:, 0] >= 0) & (kp[:, 0] <= W - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= H - 1)
                kp[~inside, 2] = 0.0  # a joint outside the image is not a detection
                anns.append({'id': len(anns), 'image_id': i, 'category_id': 1, 'bbox': box,
                             'keypoints': [round(float(v), 3) for v in kp.reshape(-1)],
                             'num_keypoints': int((kp[:, 2] > args.visible).sum()),
                             'score': float(np.mean(lm[list(BODY_LANDMARKS), 2]))})
    db = {'info': {'detector': f'mediapipe {mp.__version__} Pose (model_complexity 1), iterative masking'},
          'images': images, 'annotations': anns, 'categories': [{'id': 1, 'name': 'person'}]}
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(db, f)
    os.replace(tmp, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
