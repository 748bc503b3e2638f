"""Which extra input channels each variant's samples carry, and how they are made (the one place that knows):

| variant (cfg)                          | 'edge'                                   | 'teacher_edge' (training only)  |
|----------------------------------------|------------------------------------------|---------------------------------|
| baseline (edge.type none)              | -                                        | -                               |
| teacher (edge.type smpl_overlap)       | the SMPL overlap edge                    | -                               |
| student, edge computed in the loader   | its edge of the crop the model sees      | the SMPL overlap edge, when     |
|   (in_loader estimators: OpenCV Canny) |                                          |   distilled (distill.loss)      |
| student, edge computed in the model    | - (the model computes it)                | the same                        |

The SMPL overlap edge at crop resolution is rendered from the GT meshes (edge.overlap_source render) or read from
the full-frame file of tool/make_data/make_overlap_edges.py (or SEFD's distributed one, data/scenes.py) and warped with
the image's affine (file).
"""
import cv2
import numpy as np
import torch

from common.edges.base import build_edge
from common.edges.overlap import overlap_edges_crop
from common.paths import ROOT
from common.pipeline import preprocessing as pre
from data.scenes import find_edge_file, scene_meshes


def renders_overlap_edges(cfg):
    """Whether training samples carry the SMPL overlap edge: the teacher's input, and a distilled student's
    teacher input."""
    return cfg.edge.type == 'smpl_overlap' or (cfg.mode == 'student' and cfg.distill.loss != 'none')


def needs_spawned_workers(cfg):
    """Rendering in loader workers needs workers that are not forked from a process that rendered."""
    return renders_overlap_edges(cfg) and cfg.edge.overlap_source == 'render'


class EdgeInputs:
    """edges(rec, patch, img2bb, do_flip, W) -> {'edge' / 'teacher_edge': [1,S,S] tensors} of one sample of `ds`."""

    def __init__(self, ds):
        self.ds = ds
        self._loader_edge = None

    def __call__(self, rec, patch, img2bb, do_flip, W):
        cfg, out = self.ds.cfg, {}
        overlap = lambda: torch.from_numpy(self.overlap_edge(rec, img2bb, do_flip, W))[None]  # noqa: E731
        if cfg.edge.type == 'smpl_overlap':
            out['edge'] = overlap()
        elif cfg.mode == 'student':
            if self.loader_edge is not None:
                out['edge'] = torch.from_numpy(self.loader_edge.numpy_edge(patch))[None]
            if self.ds.train and renders_overlap_edges(cfg):
                out['teacher_edge'] = overlap()
        return out

    @property
    def loader_edge(self):
        """The student's edge estimator when it runs in the loader (built once per worker), else None."""
        if self._loader_edge is None and self.ds.cfg.mode == 'student':
            edge = build_edge(self.ds.cfg.edge)
            self._loader_edge = edge if edge.in_loader else False
        return self._loader_edge or None

    def overlap_edge(self, rec, img2bb, do_flip, W):
        """The teacher's channel [S,S] float32. A missing or unreadable file is a BadSample (skipped and counted, or
        an error), never zeros."""
        ds = self.ds
        S = ds.size
        if ds.cfg.edge.overlap_source == 'file':
            edge = ds.images.get(('overlap_edge', rec.image_rel), lambda: self.read_edge_file(rec, W))
            return pre.warp_map(edge.astype(np.float32) / 255, img2bb, (S, S), do_flip=do_flip).astype(np.float32)
        if rec.scene is None or len(rec.scene.people) < 2:
            return np.zeros((S, S), np.float32)  # nobody to hide anyone
        bodies = {g: ds.body(g) for g in {p.gender for p in rec.scene.people} | {'neutral'}}
        meshes, camera = ds.cached(('scene', id(rec.scene)), lambda: scene_meshes(rec.scene, bodies))
        trans = pre.unflip_affine(img2bb, W) if do_flip else np.asarray(img2bb, np.float64)
        areas = [float(p.bbox[2] * p.bbox[3]) for p in rec.scene.people]
        ec = ds.cfg.edge
        return overlap_edges_crop(meshes, bodies['neutral'].faces, camera, trans, (S, S), areas,
                                  method=ec.overlap_method, occluding=ec.overlap_occluding).astype(np.float32)

    def read_edge_file(self, rec, W):
        """The full-frame overlap edge map [H,W] uint8 of rec's image; W: the image's own width."""
        ds = self.ds
        path, tried = find_edge_file(ds.name, ds.root, rec.image_rel)
        if path is None:
            sefd = f" and SEFD's {tried[1]} (+{len(tried) - 2} other SEFD names)" if len(tried) > 1 else ''
            root = '' if ds.root == ROOT / 'data' / ds.name else f' --root {ds.root}'
            raise pre.BadSample(tried[0], f'missing overlap edge (looked for it{sefd}); make them with: python '
                                          f'tool/make_data/make_overlap_edges.py --dataset {ds.name}{root}, '
                                          f'or render them per crop with edge.overlap_source=render')
        edge = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if edge is None or edge.shape[1] != W:
            raise pre.BadSample(path, 'unreadable overlap edge' if edge is None else
                                f'overlap edge {edge.shape[1]} px wide, the image {W} px: not a full-frame map')
        return edge
