"""Training loop: optimizer groups and schedule, AMP, DDP, checkpoints with full resume."""
import contextlib
import logging
import os
import re
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from common.errors import UserError
from common.utils.io import atomic_torch_save
from main.model import Model, reduce_losses

log = logging.getLogger('sefd')


# ---------------------------------------------------------------------------------------------- precision
def amp_dtype(device):
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def amp_context(enabled, device):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))


def make_scaler(enabled, device):
    """A GradScaler only where fp16 is used; bf16 has fp32's range and needs none."""
    use = enabled and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=use)


# ---------------------------------------------------------------------------------------------- optimizer
def make_optimizer(model, cfg):
    """Adam with two groups (backbone at lr_backbone, heads at lr); frozen weights (VPoser) left out."""
    backbone, heads = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith('backbone.') else heads).append(p)
    groups = [{'params': backbone, 'lr': cfg.train.lr_backbone, 'base_lr': cfg.train.lr_backbone, 'name': 'backbone'},
              {'params': heads, 'lr': cfg.train.lr, 'base_lr': cfg.train.lr, 'name': 'heads'}]
    # fused: one kernel for all tensors (CPU and GPU), measurably cheaper than the per-tensor loop
    return torch.optim.Adam([g for g in groups if g['params']], fused=True)


def set_lr(optimizer, epoch, cfg):
    """Step decay: each group keeps its own base lr (the reference overwrote lr_backbone with lr)."""
    k = sum(epoch >= m for m in cfg.train.lr_dec_epochs)
    for g in optimizer.param_groups:
        g['lr'] = g['base_lr'] / cfg.train.lr_dec_factor ** k
    return [g['lr'] for g in optimizer.param_groups]


# ---------------------------------------------------------------------------------------------- checkpoints
def unwrap(model):
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_checkpoint(path, epoch, model, optimizer, scaler, cfg):
    atomic_torch_save({'epoch': epoch, 'model': unwrap(model).state_dict(), 'optimizer': optimizer.state_dict(),
                       'scaler': scaler.state_dict(), 'config': cfg.to_dict()}, path)


def latest_checkpoint(path):
    """A checkpoint file, or the highest snapshot_<epoch>.pth.tar of an experiment folder."""
    path = Path(path)
    if path.is_file():
        return path
    folder = path / 'checkpoint' if (path / 'checkpoint').is_dir() else path
    snaps = sorted(folder.glob('snapshot_*.pth.tar'), key=lambda p: int(re.findall(r'\d+', p.name)[-1]))
    if not snaps:
        raise UserError(f'no checkpoint found at {path} (expected a .pth.tar file or a folder with '
                        f'checkpoint/snapshot_<epoch>.pth.tar)')
    return snaps[-1]


def load_checkpoint(path, map_location='cpu'):
    path = latest_checkpoint(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=False), path
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise UserError(f'cannot read checkpoint {path}: {type(e).__name__}: {e} '
                        f'(the file is truncated or not a torch checkpoint)') from None


# ---------------------------------------------------------------------------------------------- loop
def make_loader(dataset, cfg, batch_size, device, sampler=None, shuffle=False, train=False):
    from data.dataset import needs_spawned_workers
    nw = cfg.data.num_workers
    # a renderer cannot be used in a process forked from one that rendered: start such workers fresh
    ctx = 'forkserver' if nw and needs_spawned_workers(cfg) else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=nw,
                      pin_memory=device.type == 'cuda', drop_last=train and len(dataset) >= batch_size,
                      persistent_workers=train and nw > 0, multiprocessing_context=ctx,
                      generator=torch.Generator().manual_seed(cfg.train.seed))


def forward_losses(model, inputs, targets, meta, amp, device):
    """(total loss, per-term means) of one training batch, under autocast when amp."""
    with amp_context(amp, device):
        return reduce_losses(model(inputs, targets, meta, 'train'))


def optimize(total, model, optimizer, scaler, grad_clip=0.0):
    """One optimizer step on `total` (scaled when the scaler is enabled, clipped when grad_clip > 0)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def to_device(tree, device, channels_last=False):
    if isinstance(tree, dict):
        return {k: to_device(v, device, channels_last) for k, v in tree.items()}
    if torch.is_tensor(tree):
        t = tree.to(device, non_blocking=True)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t
    return tree


class Trainer:
    def __init__(self, cfg, exp_dir, dataset, device, rank=0, world_size=1, resume=None):
        self.cfg, self.exp_dir, self.device, self.rank = cfg, Path(exp_dir), device, rank
        self.model = Model(cfg).to(device)
        if cfg.train.amp:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, cfg)
        self.scaler = make_scaler(cfg.train.amp, device)
        self.start_epoch = 0
        if cfg.model.pretrained and not resume:
            from main.config import resolve_path
            summary = self.model.backbone.load_pretrained(resolve_path(cfg.model.pretrained))
            log.info(f'backbone initialised from {cfg.model.pretrained}: {summary}')
        if resume:
            ckpt, path = load_checkpoint(resume)
            self.model.load_state_dict(ckpt['model'])
            self.optimizer.load_state_dict(ckpt['optimizer'])
            self.scaler.load_state_dict(ckpt['scaler'])
            self.start_epoch = ckpt['epoch'] + 1
            log.info(f'resumed from {path} (epoch {ckpt["epoch"]} done)')
        if world_size > 1:
            # the body model's buffers are constants: no need to sync them every step
            self.model = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == 'cuda' else None,
                                                 forward_sync_buffers=False)
        self.sampler = DistributedSampler(dataset, shuffle=True, seed=cfg.train.seed) if world_size > 1 else None
        self.loader = make_loader(dataset, cfg, cfg.train.batch_size, device, sampler=self.sampler,
                                  shuffle=self.sampler is None, train=True)
        self.tb = None
        if rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.exp_dir / 'tb'))

    def train(self):
        cfg = self.cfg
        self.global_step = self.start_epoch * len(self.loader)
        for epoch in range(self.start_epoch, cfg.train.end_epoch):
            lrs = set_lr(self.optimizer, epoch, cfg)
            if self.sampler is not None:
                self.sampler.set_epoch(epoch)
            self.model.train()
            n_iter = len(self.loader) if not cfg.train.max_iters else min(cfg.train.max_iters, len(self.loader))
            bar = tqdm(self.loader, total=n_iter, desc=f'epoch {epoch}/{cfg.train.end_epoch}',
                       disable=self.rank != 0, dynamic_ncols=True)
            with logging_redirect_tqdm():
                self.train_epoch(bar, epoch, n_iter, lrs)
            if self.rank == 0:
                path = self.exp_dir / 'checkpoint' / f'snapshot_{epoch}.pth.tar'
                save_checkpoint(path, epoch, self.model, self.optimizer, self.scaler, cfg)
                log.info(f'saved {path}')
        if self.tb is not None:
            self.tb.close()

    def train_epoch(self, bar, epoch, n_iter, lrs):
        cfg = self.cfg
        for it, (inputs, targets, meta) in enumerate(bar):
            if it >= n_iter:
                break
            terms = self.step(inputs, targets, meta, epoch, it)
            self.global_step += 1
            if self.rank == 0 and (it % cfg.train.print_freq == 0 or it == n_iter - 1):
                bar.set_postfix(loss=f'{terms["total"]:.4f}', lr=f'{lrs[-1]:.1e}')
                log.info(f'epoch {epoch} itr {it}/{n_iter} lr {lrs[-1]:.2e} '
                         + ' '.join(f'{k} {v:.4f}' for k, v in terms.items()))
                for k, v in terms.items():
                    self.tb.add_scalar(f'train/{k}', v, self.global_step)

    def step(self, inputs, targets, meta, epoch, it):
        dev, cl = self.device, self.cfg.train.amp
        inputs, targets, meta = to_device(inputs, dev, cl), to_device(targets, dev), to_device(meta, dev)
        total, means = forward_losses(self.model, inputs, targets, meta, self.cfg.train.amp, dev)
        if not torch.isfinite(total):
            bad = [k for k, v in means.items() if not torch.isfinite(v)]
            raise UserError(f'loss is {total.item()} at epoch {epoch} iteration {it} (non-finite terms: '
                            f'{", ".join(bad) or "total"}); lower train.lr, set train.grad_clip, or turn --amp off')
        optimize(total, self.model, self.optimizer, self.scaler, self.cfg.train.grad_clip)
        return {'total': total.item(), **{k: v.item() for k, v in means.items()}}


# ---------------------------------------------------------------------------------------------- processes
def parse_gpus(spec):
    """'0,1' or '0-3' -> [0, 1, ...]; '' -> GPU 0 if there is one, else [] (CPU); '-1' or 'cpu' -> []."""
    if spec in ('-1', 'cpu'):
        return []
    if not spec:
        return [0] if torch.cuda.is_available() else []
    ids = []
    for part in spec.split(','):
        a, _, b = part.partition('-')
        ids += list(range(int(a), int(b) + 1)) if b else [int(a)]
    if ids and not torch.cuda.is_available():
        raise UserError(f'--gpu {spec} asked for GPUs but torch sees none; drop --gpu to train on the CPU')
    if ids and max(ids) >= torch.cuda.device_count():
        raise UserError(f'--gpu {spec}: only {torch.cuda.device_count()} GPU(s) visible')
    return ids


def init_process(rank, world_size, gpu=None, port=None):
    """Device of this rank (GPU `gpu` or the CPU), with the process group joined when there are several."""
    device = torch.device('cuda', gpu) if gpu is not None else torch.device('cpu')
    if gpu is not None:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        if port:  # our own spawn; torchrun sets MASTER_ADDR/PORT itself
            os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
            os.environ.setdefault('MASTER_PORT', str(port))
        dist.init_process_group('nccl' if gpu is not None else 'gloo', rank=rank, world_size=world_size)
    return device


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
