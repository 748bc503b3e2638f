"""2D keypoint benchmarks of SEFD's Table 5 (OCHuman and CrowdPose test: COCO keypoint AP; LSP and LSPET: PCKh@0.6):
test samples from annotated people or detections, and the evaluators of the predicted mesh's projected joints.

SEFD released no evaluator for these sets; the protocol here, stated in every result's `protocol` field:
- Input 2D pose and crop per sample: the detections of <dataset>/data/<split>_keypoint_detections.json when it is
  there (COCO results format: [{image_id, keypoints [J*3] in the dataset's keypoint order, score}], as HigherHRNet
  or any bottom-up detector writes it): each detection is one sample, its score the prediction's score. Otherwise
  each annotated person with its GT keypoints as input, score 1: an upper bound without detection errors.
- Only the joints a detector gives reach the model (COCO-17 by name, plus the neck and pelvis midpoints), as in
  training (data.input_pose=detector); a dataset's other keypoints (LSP's and CrowdPose's head top) are not inputs.
- Prediction: the SMPL-30 joints of the predicted mesh projected into the crop (the model's joint_proj), mapped to
  the image and, by name, to the dataset's keypoints.
"""
import numpy as np
import torch

from common.body.joint_sets import SMPL30, map_joints
from common.errors import UserError
from common.metrics import head_size_from_joints, keypoint_ap, pckh
from common.pipeline import preprocessing as pre
from common.pipeline.posefix import detector_joints, to_coco17
from data.dataset import Record
from data.formats.coco_neuralannot import keypoints
from data.scenes import coco_images, inside_path, load_json, problem, report_problems

PCKH_THR = 0.6


class KeypointBenchmark:
    """Mixin of a BaseDataset whose test split is a keypoint benchmark. Subclasses set `keypoint_set` and `metric`
    ('ap' with `oks_sigmas`, or 'pckh'), and build their test records with `benchmark_records`."""
    keypoint_set = None
    metric = 'ap'
    oks_sigmas = None

    def benchmark_records(self, people, gt_coco=None, detections_file=None):
        """Test records of `people` [(image path, (H, W), keypoints [J,3] (x, y, visible) in keypoint_set, image id)]
        or, when detections_file exists, of its detections in those images. gt_coco: the COCO-style ground truth
        of AP sets (images, annotations, categories)."""
        self.gt_coco, self.sample_info, self.protocol = gt_coco, {}, ''
        images = {iid: (path, shape) for path, shape, _, iid in people}
        if detections_file is not None and detections_file.is_file():
            dets = load_json(detections_file, '[{image_id, keypoints [J*3], score}] (COCO results format)')
            if not isinstance(dets, list):
                raise UserError(f'{detections_file}: expected a list of detections (COCO results format)')
            people = []
            for d in dets:
                try:
                    path, shape = images[d['image_id']]
                    k = np.asarray(d['keypoints'], np.float64).reshape(len(self.keypoint_set), 3)
                    people.append((path, shape, k, d['image_id'], float(d.get('score', 1.0))))
                except (KeyError, TypeError, ValueError) as e:
                    raise UserError(f'{detections_file}: detection {d!r:.80} is malformed ({e}) or of an image '
                                    f'not in the annotations') from e
            self.protocol = f'input poses and scores: the detections of {detections_file.name}'
        else:
            people = [(path, shape, k, iid, 1.0) for path, shape, k, iid in people]
            self.protocol = 'input poses: the GT keypoints of each annotated person (no detection file: an upper bound)'
        records = []
        for n, (path, (H, W), k, iid, score) in enumerate(people):
            pose30 = self.input_pose(k)
            bbox = pre.pose_box(pose30, W, H, train=False, published=self.published_crops)
            if bbox is None:
                continue
            tight = pre.get_bbox(k[:, :2], k[:, 2] > 0, extend=1.0)
            records.append(Record(path, (H, W), bbox, tight if tight is not None else bbox, self.keypoint_set,
                                  k.astype(np.float32), key=f'{path.name} person {n}', ann_id=n))
            self.sample_info[n] = (iid, score)
        return records

    def input_pose(self, keypoints):
        """Dataset keypoints [J,3] (x, y, visible or confidence) -> the SMPL-30 input pose of a COCO detector."""
        return detector_joints(to_coco17(np.asarray(keypoints, np.float32), self.keypoint_set)).astype(np.float32)

    def get_sample(self, rec, rng):
        if self.train:
            return super().get_sample(rec, rng)
        inputs, meta = self.test_inputs(rec, self.input_pose(rec.joints_2d), pre.INPUT_CONF_THR)
        return inputs, {'keypoints': torch.from_numpy(rec.joints_2d)}, meta

    def evaluate(self, out, targets):
        return {}   # dataset-level metrics: summarize()

    def collect(self, out, meta):
        """Per-sample arrays the evaluation keeps: the predicted keypoints [B,J,2] in image px."""
        S = self.size
        uv = out['joint_proj'][..., :2].float().numpy() * (S / self.hm)       # grid -> crop px
        bb2img = meta['bb2img_trans'].numpy().astype(np.float64)              # [B,2,3] crop px -> image px
        img = np.einsum('bij,bkj->bki', bb2img[:, :, :2], uv) + bb2img[:, None, :, 2]
        return {'keypoints_img': map_joints(img.astype(np.float32), SMPL30, self.keypoint_set)}

    def summarize(self, samples):
        ids, pred = samples['ann_id'], samples['keypoints_img']
        if self.metric == 'pckh':
            gt = np.stack([self.records_by_id[int(i)].joints_2d for i in ids])
            head = head_size_from_joints(gt, self.keypoint_set.index('Head_top'), self.keypoint_set.index('Neck'))
            value, _ = pckh(pred, gt, gt[:, :, 2] > 0, head, PCKH_THR)
            return {'pckh': value}
        dets = [{'image_id': self.sample_info[int(i)][0], 'category_id': 1, 'score': self.sample_info[int(i)][1],
                 'keypoints': np.concatenate([p, np.ones((len(p), 1))], 1).reshape(-1).tolist()}
                for i, p in zip(ids, pred)]
        return keypoint_ap(self.gt_coco, dets, self.oks_sigmas)

    @property
    def records_by_id(self):
        return {r.ann_id: r for r in self.records}


def coco_ground_truth(db, keypoint_names):
    """The COCO-style ground truth pycocotools needs from a keypoint file: iscrowd 0 and the box area where missing,
    num_keypoints = the labelled joints (a person without any is ignored by COCOeval), ids from 1 (COCOeval takes
    a match to id 0 for no match)."""
    anns = []
    for n, a in enumerate(db['annotations']):
        k = np.asarray(a.get('keypoints') or np.zeros(3 * len(keypoint_names)), np.float64).reshape(-1, 3)
        box = np.asarray(a.get('bbox') or [0, 0, 0, 0], np.float64).reshape(4)
        anns.append({'id': n + 1, 'image_id': a['image_id'], 'category_id': 1, 'keypoints': k.reshape(-1).tolist(),
                     'num_keypoints': int((k[:, 2] > 0).sum()), 'bbox': box.tolist(),
                     'area': float(a.get('area') or box[2] * box[3]), 'iscrowd': int(a.get('iscrowd', 0))})
    return {'images': [{'id': i['id']} for i in db['images']], 'annotations': anns,
            'categories': [{'id': 1, 'name': 'person', 'keypoints': list(keypoint_names)}]}


def coco_keypoint_people(ann_file, image_dir, keypoint_set, layout, name, swap_wh=False):
    """(people [(image path, (H, W), keypoints [J,3], image id)], the COCO ground truth) of a COCO keypoint file;
    malformed entries are skipped and named in one warning. swap_wh: the file stores width and height swapped."""
    db, problems, people, kept = load_json(ann_file, layout), [], [], []
    for img, anns in coco_images(db, ann_file, layout, problems):
        kept += anns   # each person once (coco_images), in the ground truth too
        for a in anns:
            where = f'image {img.get("id")} annotation {a.get("id")}'
            try:
                if not a.get('keypoints'):
                    continue   # a person without keypoints (OCHuman has some): not a sample, ignored by COCOeval
                k = keypoints(a, len(keypoint_set), where)
                hw = (int(img['width']), int(img['height'])) if swap_wh else (int(img['height']), int(img['width']))
                people.append((image_dir / inside_path(img['file_name'], where), hw, k, img['id']))
            except (KeyError, TypeError, ValueError) as e:
                problems.append(problem(where, e))
    report_problems(name, problems)
    db['annotations'] = kept
    return people, coco_ground_truth(db, keypoint_set.joints)
