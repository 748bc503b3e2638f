"""Training loop: optimizer groups and schedule, the step, DDP wrapping, checkpoints, logs (text, TensorBoard,
tqdm), validation.

Exact resume: the data order and every sample's augmentation are functions of (train.seed, epoch, position)
(data/loader.py), and a checkpoint holds the model, optimizer, scaler, epoch, iteration (the sampler position) and
RNG states; so a run killed at any moment and continued from its last checkpoint retraces the same steps as an
uninterrupted one.
"""
import contextlib
import logging
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from common.errors import UserError
from common.runtime import amp_choice, amp_context, make_scaler, rng_state, set_rng_state, to_device, unwrap
from data.loader import EpochSampler, SeededSamples, make_loader
from main.checkpoint import (BEST, LAST, LEARNED_LOSS_PARTS, BackgroundWriter, load_checkpoint, load_model_state,
                             load_teacher, remove_stale_temporaries, snapshot_name)
from main.config import VPOSER_FROM_CHECKPOINT
from main.model import Model
from main.tester import evaluate

log = logging.getLogger('sefd')


# ---------------------------------------------------------------------------------------------- optimizer
def make_optimizer(model, cfg):
    """Adam with two groups (backbone at lr_backbone; heads and learned loss parts at lr); frozen weights
    (VPoser, and the student's teacher and edge nets, which are not even parameters of the model) left out."""
    backbone, heads = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith('backbone.') else heads).append(p)
    groups = [{'params': backbone, 'lr': cfg.train.lr_backbone, 'base_lr': cfg.train.lr_backbone, 'name': 'backbone'},
              {'params': heads, 'lr': cfg.train.lr, 'base_lr': cfg.train.lr, 'name': 'heads'}]
    # fused: one kernel for all tensors (CPU and GPU), measurably cheaper than the per-tensor loop
    return torch.optim.Adam([g for g in groups if g['params']], fused=True)


def lr_factor(cfg, epoch, global_step=None):
    """Step decay by lr_dec_factor at each of lr_dec_epochs, times a linear warm-up over warmup_iters."""
    f = cfg.train.lr_dec_factor ** -sum(epoch >= m for m in cfg.train.lr_dec_epochs)
    if global_step is not None and cfg.train.warmup_iters > 0:
        f *= min(1.0, (global_step + 1) / cfg.train.warmup_iters)
    return f


def set_lr(optimizer, epoch, cfg, global_step=None):
    """Each group keeps its own base lr (the reference overwrote lr_backbone with lr)."""
    f = lr_factor(cfg, epoch, global_step)
    for g in optimizer.param_groups:
        g['lr'] = g['base_lr'] * f
    return [g['lr'] for g in optimizer.param_groups]


# ---------------------------------------------------------------------------------------------- one step
def forward_losses(model, inputs, targets, meta, amp, device):
    """(total loss, {term: scalar}) of one training batch, under autocast when amp."""
    with amp_context(amp, device):
        return model(inputs, targets, meta, 'train')


def optimize(total, model, optimizer, scaler, grad_clip=0.0):
    """One optimizer step on `total` (scaled when the scaler is enabled, clipped when grad_clip > 0)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


# ---------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Builds the model (and a student's teacher), the optimizer and the loader; `train()` runs to end_epoch.

    resume: a checkpoint of this project to continue exactly (model, optimizer, scaler, position, RNG).
    start: (checkpoint dict, path) whose weights start a new run at the epoch after its own (a published
        3DCrowdNet / SEFD snapshot, or any checkpoint file); a 3-channel conv1 is inflated for an edge channel.
    val_dataset: evaluated every train.val_every epochs (best.pth.tar keeps the best MPJPE).
    """

    def __init__(self, cfg, exp_dir, dataset, device, rank=0, world_size=1, resume=None, val_dataset=None,
                 start=None):
        self.cfg, self.exp_dir, self.device, self.rank, self.world = cfg, Path(exp_dir), device, rank, world_size
        self.dataset, self.val_dataset = dataset, val_dataset
        self.ckpt_dir = self.exp_dir / 'checkpoint'
        if cfg.model.pose_head == 'vposer' and cfg.model.vposer_ckpt == VPOSER_FROM_CHECKPOINT \
                and resume is None and start is None:
            raise UserError(f'model.vposer_ckpt={VPOSER_FROM_CHECKPOINT} takes the VPoser weights from a published '
                            f'snapshot: start from one (--continue --exp_dir <snapshot>) or give a VPoser v1 file')
        self.model = Model(cfg)
        self.attach_teacher(fresh=resume is None and start is None)
        if start is not None:
            self.start_from(*start)
        elif cfg.model.pretrained and resume is None and not self.started_from_teacher:
            from common.paths import resolve_path
            weights = 'imagenet' if cfg.model.pretrained == 'imagenet' else resolve_path(cfg.model.pretrained)
            summary = self.model.backbone.load_pretrained(weights, edge_init=cfg.model.edge_init)
            if not summary.loaded:   # a file of another network: training from scratch would look like success
                raise UserError(f'model.pretrained={cfg.model.pretrained}: none of its tensors fits the '
                                f'{cfg.model.backbone} backbone ({summary}); give ImageNet weights of that network')
            log.info(f'backbone initialised from {cfg.model.pretrained}: {summary}')
        self.model.to(device)
        if cfg.train.amp:
            self.model = self.model.to(memory_format=torch.channels_last)
            dtype, why = amp_choice(device)
            (log.info if dtype is not None else log.warning)(f'--amp: {why}; channels_last')
        self.optimizer = make_optimizer(self.model, cfg)
        self.scaler = make_scaler(cfg.train.amp, device)
        self.epoch, self.iteration, self.global_step, self.best = 0, 0, 0, math.inf
        if start is not None:
            self.epoch = start[0].get('epoch', -1) + 1
        if resume is not None:
            self.restore(resume)
        if world_size > 1:
            # the body model's buffers are constants: no need to sync them every step
            self.model = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == 'cuda' else None,
                                                 forward_sync_buffers=False)
        self.sampler = EpochSampler(len(dataset), cfg.train.seed, rank, world_size)
        self.loader = make_loader(SeededSamples(dataset), cfg, cfg.train.batch_size, device, sampler=self.sampler,
                                  train=True)
        self.tb = None
        self.writer = BackgroundWriter()
        if rank == 0:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.exp_dir / 'tb'), purge_step=self.global_step or None)

    # ------------------------------------------------------------------------------------------ setup
    def attach_teacher(self, fresh):
        """A student: load distill.teacher_ckpt; start from all of its weights on a fresh run
        (distill.init_from_teacher), and keep it frozen for distillation (distill.loss != none)."""
        cfg, self.started_from_teacher = self.cfg, False
        if cfg.mode != 'student' or not cfg.distill.teacher_ckpt:
            return
        init = fresh and cfg.distill.init_from_teacher
        if self.model.distill_loss is None and not init:
            return
        teacher, teacher_sd, path = load_teacher(cfg)
        if init:
            load_model_state(self.model, teacher_sd, path, allow_missing=LEARNED_LOSS_PARTS,
                             allow_unexpected=LEARNED_LOSS_PARTS)
            self.started_from_teacher = True
            log.info(f'student initialised from the teacher {path}')
        if self.model.distill_loss is not None:
            self.model.set_teacher(teacher)
            log.info(f'distilling {cfg.distill.loss} on stages {cfg.distill.stages} (weights {cfg.distill.weights}) '
                     f'from the frozen teacher {path}')

    def start_from(self, ckpt, path):
        state = dict(ckpt['model'])
        key = f'backbone.{self.model.backbone.stem_key}'
        stem, own = state.get(key), self.model.state_dict()[key]
        if stem is not None and stem.shape[1] == 3 and own.shape[1] > 3:
            from common.nets.pretrained import inflate_conv1_weight
            state[key] = inflate_conv1_weight(stem, own.shape[1], self.cfg.model.edge_init)
        load_model_state(self.model, state, path, allow_missing=LEARNED_LOSS_PARTS, allow_unexpected=LEARNED_LOSS_PARTS)
        log.info(f'started from the weights of {path} (epoch {ckpt.get("epoch", -1)})')

    def iters_per_epoch(self):
        n = self.sampler.num_samples // self.cfg.train.batch_size if self.sampler.num_samples >= \
            self.cfg.train.batch_size else 1
        return min(n, self.cfg.train.max_iters) if self.cfg.train.max_iters else n

    # ------------------------------------------------------------------------------------------ checkpoints
    def checkpoint_state(self):
        return {'epoch': self.epoch, 'iteration': self.iteration, 'global_step': self.global_step,
                'model': unwrap(self.model).state_dict(), 'optimizer': self.optimizer.state_dict(),
                'scaler': self.scaler.state_dict(), 'rng': rng_state(), 'best_mpjpe': self.best,
                'world_size': self.world, 'config': self.cfg.to_dict()}

    def save(self, *names, then=None):
        """Checkpoint files `names`, written in the background (self.writer); then() runs after the last one."""
        if self.rank != 0:
            return
        self.writer.submit(self.checkpoint_state(), [self.ckpt_dir / n for n in names], then)

    def restore(self, path):
        ckpt, path = load_checkpoint(path, prefer_last=True)
        load_model_state(self.model, ckpt['model'], path)
        self.optimizer.load_state_dict(ckpt['optimizer'])
        self.apply_base_lrs(path)
        self.scaler.load_state_dict(ckpt['scaler'])
        self.epoch, self.global_step = ckpt['epoch'], ckpt.get('global_step', 0)
        # an epoch-end snapshot (or one of an older format) has its epoch done
        self.iteration = ckpt.get('iteration', math.inf)
        self.best = ckpt.get('best_mpjpe', math.inf)
        if 'rng' in ckpt:
            set_rng_state(ckpt['rng'])
        if ckpt.get('world_size', self.world) != self.world:
            log.warning(f'{path} was written by {ckpt["world_size"]} process(es), this run has {self.world}: the '
                        f'rest of the epoch is re-sharded, so the run is no longer bit-identical to an uninterrupted one')
        remove_stale_temporaries(path.parent)
        log.info(f'resumed from {path} (epoch {self.epoch}, iteration {min(self.iteration, 10**9)}, '
                 f'step {self.global_step})')

    def apply_base_lrs(self, path):
        """The learning rates of this run's config, not the resumed optimizer's (its state carries the old ones):
        `--continue train.lr=...` changes what it says, and the config saved with the next snapshot records it."""
        want = {'backbone': self.cfg.train.lr_backbone, 'heads': self.cfg.train.lr}
        for g in self.optimizer.param_groups:
            new = want.get(g.get('name'), g['base_lr'])
            if new != g['base_lr']:
                key = 'train.lr_backbone' if g['name'] == 'backbone' else 'train.lr'
                log.warning(f'{key} {g["base_lr"]:g} in {path}, {new:g} now: applied from here on (the run is no '
                            f'longer the one an uninterrupted run would have been)')
                g['base_lr'] = new

    # ------------------------------------------------------------------------------------------ loop
    def train(self):
        if self.epoch >= self.cfg.train.end_epoch or (self.epoch == self.cfg.train.end_epoch - 1 and
                                                       self.iteration >= self.iters_per_epoch()):
            log.warning(f'nothing to train: {self.exp_dir} has finished its {self.cfg.train.end_epoch} epoch(s); '
                        f'continue with a later train.end_epoch=N to train on')
        try:
            self.train_epochs()
        except BaseException:
            with contextlib.suppress(Exception):   # the first error is the one to report
                self.writer.wait()
            raise
        self.writer.wait()
        if self.tb is not None:
            self.tb.close()

    def train_epochs(self):
        cfg = self.cfg
        if self.iteration >= self.iters_per_epoch():
            self.epoch, self.iteration = self.epoch + 1, 0
        while self.epoch < cfg.train.end_epoch:
            n_iter = self.iters_per_epoch()
            self.sampler.set_epoch(self.epoch, start=self.iteration * cfg.train.batch_size)
            self.model.train()
            bar = tqdm(total=n_iter, initial=self.iteration, desc=f'epoch {self.epoch}/{cfg.train.end_epoch}',
                       disable=self.rank != 0, dynamic_ncols=True)
            with logging_redirect_tqdm():
                self.train_epoch(bar, n_iter)
            bar.close()
            snap = self.ckpt_dir / snapshot_name(self.epoch)
            # last.pth.tar is older than the snapshot once the snapshot is on disk
            self.save(snap.name, then=lambda s=snap: ((self.ckpt_dir / LAST).unlink(missing_ok=True),
                                                      log.info(f'saved {s}')))
            if cfg.train.val_every and (self.epoch + 1) % cfg.train.val_every == 0:
                self.validate()
            self.epoch, self.iteration = self.epoch + 1, 0

    def train_epoch(self, bar, n_iter):
        cfg = self.cfg
        t0, samples = time.perf_counter(), 0
        for batch in self.loader:
            if self.iteration >= n_iter:
                break
            lrs = set_lr(self.optimizer, self.epoch, cfg, self.global_step)
            terms = self.step(*batch)
            self.iteration += 1
            self.global_step += 1
            samples += len(batch[0]['img']) * self.world   # a set smaller than train.batch_size gives a smaller batch
            bar.update(1)
            if self.rank == 0 and (self.iteration % cfg.train.print_freq == 0 or self.iteration == n_iter):
                rate = samples / (time.perf_counter() - t0)
                t0, samples = time.perf_counter(), 0
                self.log_step(terms, lrs, rate, bar, n_iter)
            if self.rank == 0 and cfg.train.vis_every and self.global_step % cfg.train.vis_every == 0:
                self.visualise(batch[0])
            if cfg.train.ckpt_every and self.global_step % cfg.train.ckpt_every == 0 and self.iteration < n_iter:
                self.save(LAST)

    def step(self, inputs, targets, meta):
        dev, cl = self.device, self.cfg.train.amp
        inputs, targets, meta = to_device(inputs, dev, cl), to_device(targets, dev), to_device(meta, dev)
        total, terms = forward_losses(self.model, inputs, targets, meta, self.cfg.train.amp, dev)
        if not torch.isfinite(total):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            last = self.ckpt_dir / LAST
            kept = f'; the last good checkpoint is {last}' if last.is_file() else ''
            raise UserError(f'loss is {total.item()} at epoch {self.epoch} iteration {self.iteration} (non-finite terms: '
                            f'{", ".join(bad) or "total"}); lower train.lr, set train.grad_clip, or turn --amp off{kept}')
        optimize(total, self.model, self.optimizer, self.scaler, self.cfg.train.grad_clip)
        return {'total': total.item(), **{k: v.item() for k, v in terms.items()}}

    # ------------------------------------------------------------------------------------------ logs
    def log_step(self, terms, lrs, rate, bar, n_iter):
        bar.set_postfix(loss=f'{terms["total"]:.4f}', lr=f'{lrs[-1]:.1e}', samples_s=f'{rate:.1f}')
        log.info(f'epoch {self.epoch} itr {self.iteration}/{n_iter} lr {lrs[-1]:.2e} {rate:.1f} samples/s '
                 + ' '.join(f'{k} {v:.4f}' for k, v in terms.items()))
        step = self.global_step
        for k, v in terms.items():
            self.tb.add_scalar(f'train/{k}', v, step)
        for g, lr in zip(self.optimizer.param_groups, lrs):
            self.tb.add_scalar(f'lr/{g["name"]}', lr, step)
        self.tb.add_scalar('speed/samples_per_s', rate, step)
        weighting = unwrap(self.model).loss_weighting
        if weighting is not None:
            for k, w in weighting.weights().items():
                self.tb.add_scalar(f'loss_weight/{k}', w, step)

    @torch.no_grad()
    def visualise(self, inputs, n=4):
        """TensorBoard images: input crops, the edge channel, the predicted meshes over the crops."""
        from common import vis
        from common.camera import Camera
        model = unwrap(self.model)
        inputs = {k: v[:n] for k, v in to_device(inputs, self.device).items()}
        model.eval()
        with amp_context(self.cfg.train.amp, self.device):
            out = model(inputs, mode='test')
        model.train()
        S = model.input_size
        faces = model.body_model.faces
        crops, edges, overlays = [], [], []
        for i in range(len(inputs['img'])):
            crops.append(vis.to_uint8_image(inputs['img'][i]))
            if 'edge' in out:
                edges.append(vis.edge_image(out['edge'][i]))
            overlays.append(vis.render_meshes(crops[-1], [out['mesh_cam_render'][i].float()], faces,
                                              Camera(S, S, self.cfg.model.focal, (S / 2, S / 2)))[0])
        for name, imgs in (('input', crops), ('edge', edges), ('mesh', overlays)):
            if imgs:
                self.tb.add_image(f'vis/{name}', vis.grid(imgs, len(imgs)), self.global_step, dataformats='HWC')

    # ------------------------------------------------------------------------------------------ validation
    def validate(self):
        if self.rank == 0 and self.val_dataset is not None:
            result = evaluate(unwrap(self.model), self.val_dataset, self.cfg, self.device)
            mpjpe = result.summary['mpjpe']
            for k, v in result.summary.items():
                self.tb.add_scalar(f'val/{k}', v, self.global_step)
            log.info(f'validation after epoch {self.epoch}: ' + result.line())
            if mpjpe < self.best:
                self.best = mpjpe
                self.save(BEST)
                log.info(f'new best MPJPE {mpjpe:.2f} mm: saved {self.ckpt_dir / BEST}')
        if self.world > 1:
            dist.barrier()
