"""Person crops with rendered edge targets, to train and score the learned edge networks
(tool/experiments/train_edge.py).

Samples are person crops of a dataset in the 3DPW layout (the synthetic set by default), cropped as the
student's input is (a person box made square, x1.25, with scale/rotation/flip/colour augmentation in
training). Their targets are rendered from the GT meshes directly at crop resolution:
- edge: every person's structural edges in the crop, visible (the contours of all people rendered
  together: silhouettes and self-occlusion contours) or hidden by another person (SEFD's overlap edges),
  dilated per person by box size as the overlap edges are (common/edges/overlap.py);
- mask: the pixels covered by any person (SEE's second head).
"""
import logging

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from common.body.smpl import get_body_model
from common.edges.overlap import overlap_edges
from common.errors import UserError
from common.pipeline import preprocessing as pre
from common.render.renderer import default_renderer
from data.Synthetic import Synthetic
from data.scenes import scene_meshes

log = logging.getLogger('sefd')
BOX_SCALE = 1.25


def render_targets(meshes, faces, camera, img2crop, size, box_areas):
    """(edge, mask) [S,S] float32 in {0,1} of one crop. camera: the image's; img2crop: 2x3 affine from ORIGINAL
    image pixels to crop pixels (negative determinant = mirrored crop). box_areas in original image px^2."""
    if not meshes:
        return np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)
    crop = camera.crop(img2crop, size)
    verts = [np.asarray(v, np.float32) @ crop.rot.astype(np.float32).T for v in meshes]
    areas = np.asarray(box_areas, np.float64) * crop.area_scale
    overlap, visible = overlap_edges(verts, faces, crop.camera, areas, renderer=default_renderer(), return_all=True)
    ids = default_renderer().render(verts, faces, crop.camera, outputs=('person_id',)).person_id
    edge, mask = np.maximum(overlap, visible), (ids >= 0).astype(np.float32)
    if crop.flip:
        edge, mask = edge[:, ::-1], mask[:, ::-1]
    return np.ascontiguousarray(edge), np.ascontiguousarray(mask)


class EdgeCrops(Dataset):
    """Person crops with rendered edge and mask targets. Index with an int (test: no augmentation) or with
    (int, seed) (training: the augmentation is drawn from `seed`, so a resumed run sees the same samples).
    Returns {'img': [3,S,S] float in [0,1], 'edge': [1,S,S], 'mask': [1,S,S]}."""

    def __init__(self, root, split, size, train, model_dir=None):
        self.root, self.split, self.size, self.train, self.model_dir = root, split, size, train, model_dir
        self.scenes, self.problems = Synthetic.read_scenes(root, split)
        self.image_dir = Synthetic.image_dir(root)
        self.items = [(s, p) for s, scene in enumerate(self.scenes) for p, person in enumerate(scene.people)
                      if person.bbox[2] > 1 and person.bbox[3] > 1]
        self._meshes, self._bodies = {}, {}
        self.bad = set()

    def __len__(self):
        return len(self.items)

    def meshes(self, s):
        if s not in self._meshes:
            scene = self.scenes[s]
            bodies = {g: self.body(g) for g in {p.gender for p in scene.people} | {'neutral'}}
            meshes, camera = scene_meshes(scene, bodies)
            self._meshes[s] = (meshes, bodies['neutral'].faces, camera)
        return self._meshes[s]

    def body(self, gender):
        if gender not in self._bodies:
            self._bodies[gender] = get_body_model(gender, self.model_dir)
        return self._bodies[gender]

    def __getitem__(self, index):
        index, seed = index if isinstance(index, tuple) else (index, None)
        for k in range(len(self.items)):   # a missing or corrupt image: the next crop instead, said once
            try:
                aug = pre.get_aug_config(np.random.default_rng(seed), train=self.train and seed is not None)
                return self.crop((index + k) % len(self.items), aug)
            except pre.BadSample as e:
                if not self.bad:
                    log.warning(f'skipping bad samples of {self.root} ({e})')
                self.bad.add((index + k) % len(self.items))
        raise UserError(f'{self.root} {self.split}: every image is missing or corrupt')

    def crop(self, index, aug):
        """Crop `index` with augmentation `aug` (preprocessing.AugConfig) and its rendered targets."""
        s, p = self.items[index]
        scene = self.scenes[s]
        img = pre.load_img(self.image_dir / scene.image)
        H, W = img.shape[:2]
        bbox = pre.process_bbox(scene.people[p].bbox, W, H, scale=BOX_SCALE, train=False)
        S = self.size
        patch, img2bb, _ = pre.generate_patch_image(img, bbox, aug.scale, aug.rot, aug.do_flip, (S, S))
        patch = pre.apply_color_gain(patch, aug.color_gain)
        trans = pre.unflip_affine(img2bb, W) if aug.do_flip else np.asarray(img2bb, np.float64)
        meshes, faces, camera = self.meshes(s)
        areas = [float(q.bbox[2] * q.bbox[3]) for q in scene.people]
        edge, mask = render_targets(meshes, faces, camera, trans, S, areas)
        return {'img': torch.from_numpy(pre.image_to_chw(patch)), 'edge': torch.from_numpy(edge)[None],
                'mask': torch.from_numpy(mask)[None]}


class StepSampler(Sampler):
    """Batches of (index, seed) for steps start..steps-1, a pure function of (seed, step): resumable."""

    def __init__(self, n, batch, start, steps, seed=0):
        self.n, self.batch, self.start, self.steps, self.seed = n, batch, start, steps, seed

    def __len__(self):
        return max(self.steps - self.start, 0)

    def __iter__(self):
        for step in range(self.start, self.steps):
            rng = np.random.default_rng([self.seed, step])
            idx = rng.integers(self.n, size=self.batch)
            yield [(int(i), int(rng.integers(2 ** 62))) for i in idx]
