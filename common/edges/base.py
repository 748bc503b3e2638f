"""The interface of the student's edge plug-ins (the EDGES registry).

    edge = build_edge(cfg.edge)        # cfg.edge.type: canny | rcf | hed | pidinet | see
    e = edge(img)                      # img [B,3,H,W] RGB in [0,1] -> [B,1,H,W], no grad, fp32

Each kind lives in common/edges/<type>.py and registers a factory `EDGES.register('<type>')` taking the
`edge:` config section. An estimator runs where it is cheapest:
- `in_loader = False` (the default): inside the model, on the training device, batched;
- `in_loader = True`: per sample in the DataLoader workers (`numpy_edge`), which put it in
  inputs['edge']; the model then only reads it.
The model holds estimators through `common.nets.frozen.Frozen`: never trained, never in a checkpoint.
"""
import numpy as np
import torch
import torch.nn as nn

from common.errors import UserError
from common.registry import EDGES, closest

class EdgeEstimator(nn.Module):
    in_loader = False

    def edge(self, img):
        """[B,3,H,W] RGB float in [0,1] -> [B,1,H,W] float. Called without gradients, outside autocast."""
        raise NotImplementedError

    def numpy_edge(self, patch):
        """HxWx3 RGB crop (uint8, or float in 0..255) -> HxW float32; only for in_loader estimators."""
        raise NotImplementedError(f'{type(self).__name__} runs inside the model, not in the loader')

    def forward(self, img):
        with torch.no_grad(), torch.autocast(img.device.type, enabled=False):
            return self.edge(img.float().contiguous())

    def batch_numpy(self, img):
        """numpy_edge over a torch batch (tests and benchmarks compare the two paths with it)."""
        out = [self.numpy_edge(np.ascontiguousarray(x.permute(1, 2, 0).cpu().numpy() * 255)) for x in img]
        return torch.from_numpy(np.stack(out))[:, None].to(img.device)


def build_edge(edge_cfg):
    """The estimator of edge_cfg.type (a student edge; its module common/edges/<type>.py is imported on first use)."""
    name = edge_cfg.type
    names = EDGES.names()
    if name not in names:
        raise UserError(f'edge.type {name!r} is not a student edge; one of {names}{closest(name, names)}')
    return EDGES.build(name, edge_cfg)
