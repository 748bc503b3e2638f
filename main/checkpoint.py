"""Checkpoints: one atomic writer, one reader, and building a model from a checkpoint.

A checkpoint of this project is a dict {'model': state dict, 'config': the resolved config, 'epoch',
'iteration', 'global_step', 'optimizer', 'scaler', 'rng', ...} (see Trainer.checkpoint_state). The student's
teacher and edge estimators are never in it. Files in an experiment folder:
  checkpoint/snapshot_<epoch>.pth.tar   at the end of each epoch (3DCrowdNet's name)
  checkpoint/last.pth.tar               the state every train.ckpt_every iterations within an epoch (removed
                                        when the epoch's snapshot is written)
  checkpoint/best.pth.tar               the best validation MPJPE (train.val_every)
"""
import dataclasses
import logging
import re
from pathlib import Path

from common.errors import UserError
from common.io import atomic_torch_save, load_torch_file
from common.paths import ROOT

log = logging.getLogger('sefd')

LAST = 'last.pth.tar'
BEST = 'best.pth.tar'
# The demo's default model (main/predictor.py): tool/quickstart.py copies its distilled student here; any checkpoint
# of this project may be put here.
DEFAULT_MODEL = ROOT / 'output' / 'default_model' / 'model.pth.tar'


def snapshot_name(epoch):
    return f'snapshot_{epoch}.pth.tar'


def checkpoint_dir(path):
    path = Path(path)
    return path / 'checkpoint' if (path / 'checkpoint').is_dir() else path


def snapshots(folder):
    """snapshot_<epoch>.pth.tar files of a folder, by epoch."""
    found = [p for p in Path(folder).glob('snapshot_*.pth.tar') if re.fullmatch(r'snapshot_\d+\.pth\.tar', p.name)]
    return sorted(found, key=lambda p: int(p.name.split('_')[1].split('.')[0]))


def latest_checkpoint(path, epoch=None, prefer_last=False):
    """A checkpoint file, or in an experiment folder: snapshot_<epoch> when `epoch` is given, else the newest
    snapshot (prefer_last: the newest state, which may be the mid-epoch last.pth.tar)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f'{path} does not exist (expected a .pth.tar file or an experiment folder)')
    folder = checkpoint_dir(path)
    if epoch is not None:
        p = folder / snapshot_name(epoch)
        if not p.is_file():
            have = ', '.join(str(int(s.name.split('_')[1].split('.')[0])) for s in snapshots(folder)) or 'none'
            raise UserError(f'{p} not found (epochs with a snapshot: {have})')
        return p
    snaps, last = snapshots(folder), folder / LAST
    if last.is_file() and (not snaps or (prefer_last and last.stat().st_mtime >= snaps[-1].stat().st_mtime)):
        return last
    if snaps:
        return snaps[-1]
    raise UserError(f'no checkpoint found at {path} (expected a .pth.tar file or a folder with '
                    f'checkpoint/snapshot_<epoch>.pth.tar)')


def load_checkpoint(path, epoch=None, prefer_last=False, what='checkpoint'):
    """(dict, resolved path), read on the CPU; one line for a missing or unreadable file."""
    path = latest_checkpoint(path, epoch, prefer_last)
    ckpt = load_torch_file(path, what)   # weights-only: no checkpoint can run code
    from main.published_checkpoint import convert_published, is_published
    if is_published(ckpt):  # a 3DCrowdNet / SEFD snapshot: converted on load (tool/convert/convert_checkpoint.py: once)
        ckpt = convert_published(ckpt, path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('model'), dict):
        keys = sorted(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UserError(f'{what} {path} is not a checkpoint of this project (found {keys}; expected a dict with '
                        f'"model" and "config")')
    import torch
    odd = next((k for k, v in ckpt['model'].items() if not isinstance(v, torch.Tensor)), None)
    if odd is not None:
        raise UserError(f'{what} {path} is not a checkpoint of this project: its weight {odd!r} is a '
                        f'{type(ckpt["model"][odd]).__name__}, not a tensor')
    return ckpt, path


def save_checkpoint(path, state):
    atomic_torch_save(state, path)
    return path


def publish_model(src, dst=DEFAULT_MODEL):
    """Copy the model of checkpoint src (its weights, config and epoch, not the optimiser's state) to dst, atomically;
    returns dst."""
    ckpt, path = load_checkpoint(src)
    return save_checkpoint(dst, {'model': ckpt['model'], 'config': ckpt['config'], 'epoch': ckpt.get('epoch'),
                                 'copied_from': str(path)})


class BackgroundWriter:
    """Writes a training run's checkpoints in a thread. The loop pays for copying the state (~0.1 s for a 180 MB
    ResNet-18 state with Adam), not for writing and fsyncing it (measured up to 9 s on a shared VM's disk). One write
    at a time; `wait()` joins it and raises what it raised (a full disk): call it before the process ends."""

    def __init__(self):
        self._thread, self._error = None, None

    def submit(self, state, paths, then=None):
        """Write a copy of `state` to each path, atomically, in order; then call then() (in the thread)."""
        import copy
        import threading
        self.wait()
        state = copy.deepcopy(state)   # the loop goes on changing the live tensors

        def run():
            try:
                for path in paths:
                    save_checkpoint(path, state)
                if then is not None:
                    then()
            except BaseException as e:   # re-raised in the loop's thread by wait()
                self._error = e
        self._thread = threading.Thread(target=run, name='checkpoint-writer')
        self._thread.start()

    def wait(self):
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def remove_stale_temporaries(folder):
    """Temporaries of atomic writes that a killed process left behind (never read, only litter)."""
    for p in Path(folder).glob('.*.tmp'):
        p.unlink(missing_ok=True)


def config_of(ckpt, path, overrides=None, yaml_path=None):
    """The config saved in a checkpoint (config.saved_settings), then an optional YAML file and key=value overrides on
    top."""
    from main.config import Config, load_yaml_into, parse_overrides, saved_settings, update_config, validate
    if not isinstance(ckpt.get('config'), dict):
        raise UserError(f'{path} holds no config; is it a checkpoint of this project?')
    cfg = update_config(Config(), saved_settings(ckpt['config']), f'the config saved in {path}')
    if yaml_path:
        load_yaml_into(cfg, yaml_path)
    return validate(update_config(cfg, parse_overrides(overrides), 'the command line'))


def load_model_state(model, state_dict, path, allow_missing=(), allow_unexpected=()):
    """load_state_dict with one line naming what does not fit; keys under the allowed prefixes may be absent
    (missing) or extra (unexpected)."""
    own = model.state_dict()
    bad_shape = [k for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad_shape:
        k = bad_shape[0]
        raise UserError(f'{path} does not fit this model: {k} has shape {tuple(state_dict[k].shape)}, the model '
                        f'expects {tuple(own[k].shape)}; was it trained with another model.backbone / mode / edge?')
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not k.startswith(tuple(allow_missing))]
    unexpected = [k for k in unexpected if not k.startswith(tuple(allow_unexpected))]
    if missing or unexpected:
        raise UserError(f'{path} does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]}); '
                        f'was it trained with another model.backbone / mode / pose_head / distill.loss?')


def model_from_checkpoint(path, epoch=None, overrides=None, yaml_path=None, body_model=None):
    """(model in eval mode on the CPU, config, checkpoint dict, path): the model a checkpoint describes."""
    from main.model import Model
    ckpt, path = load_checkpoint(path, epoch)
    cfg = config_of(ckpt, path, overrides, yaml_path)
    model = Model(cfg, body_model)
    load_model_state(model, ckpt['model'], path)
    return model.eval(), cfg, ckpt, path


LEARNED_LOSS_PARTS = ('distill_loss.', 'loss_weighting.')


# what a published SEFD student keeps of its teacher: backbone and Pose2Feat, all that distillation reads
EMBEDDED_TEACHER_LACKS = ('position_net.', 'rotation_net.', 'vposer.')


def load_teacher(cfg, body_model=None):
    """The frozen teacher of a student config, from distill.teacher_ckpt, checked against the student.

    distill.teacher_ckpt may also be a (converted) published SEFD student, which carries its teacher's backbone
    and Pose2Feat (ckpt['teacher']): enough to distil from, not to initialise a student from (no heads)."""
    from common.paths import resolve_path
    from main.model import Model, check_teacher_fits
    ckpt, path = load_checkpoint(resolve_path(cfg.distill.teacher_ckpt), prefer_last=False, what='teacher checkpoint')
    embedded = isinstance(ckpt.get('teacher'), dict)
    ckpt = ckpt['teacher'] if embedded else ckpt
    tcfg = config_of(ckpt, path)
    if embedded:   # the student's own teacher: the same model settings, with this run's overrides (model.smpl_dir...)
        tcfg.model = dataclasses.replace(cfg.model)
    check_teacher_fits(cfg, tcfg, where=f'distill.teacher_ckpt {path}')
    teacher = Model(tcfg, body_model)
    load_model_state(teacher, ckpt['model'], path, allow_missing=LEARNED_LOSS_PARTS + (
        EMBEDDED_TEACHER_LACKS if embedded else ()), allow_unexpected=LEARNED_LOSS_PARTS)
    return teacher.eval(), ckpt['model'], path
