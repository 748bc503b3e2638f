"""The one typed configuration: dataclass defaults <- YAML experiment file <- `key=value` overrides.

    cfg = load_config('assets/yaml/baseline.yml', ['train.lr=1e-4', 'model.backbone=resnet18'])

Unknown keys and ill-typed values are a `UserError` naming the closest valid key. Nothing is created on
import; `make_exp_dir(cfg)` makes the experiment folder when a run starts.
"""
import dataclasses
import datetime
import re
import typing
from dataclasses import dataclass, field

import yaml

from common.errors import UserError, check_number
from common.io import MAX_YAML_BYTES, load_yaml_bounded
from common.paths import resolve_path
from common.registry import DISTILL_LOSSES, EDGE_INITS, EDGES, closest, stage_problem
from main.published_config import ADDED_KEYS, translate_published


MODES = ('baseline', 'teacher', 'student')
INPUT_POSES = ('detector', 'published')
CAMERAS = ('centred', 'anchored', 'published')


@dataclass
class ModelConfig:
    backbone: str = 'resnet50'
    input_size: int = 256          # square crop fed to the network (px); heatmaps are input_size // 4
    pose_head: str = 'rot6d'       # rot6d (per-joint 6D, no weights needed) | vposer (needs vposer_ckpt)
    vposer_ckpt: str = ''          # VPoser v1 snapshot (.pt), relative to the repo root or absolute
    pretrained: str = ''           # backbone init: a checkpoint (ImageNet / SimpleBaseline / 3DCrowdNet), 'imagenet'
                                   # (the backbone's ImageNet weights where this machine has them) or '' (scratch)
    edge_init: str = 'luminance'   # the edge channel's stem filters when a 3-channel stem is inflated: luminance (the
                                   # sum of the RGB filters: edges act as white lines on the image) | published (~0)
    pose2feat: str = 'residual'    # pose heatmaps fused into the stem feature: residual (stem + BN(conv), BN starting
                                   # at 0: a pretrained backbone starts with its own features) | published (conv-BN-ReLU)
    smpl_dir: str = ''             # '' = common/utils/human_model_files (official files, else procedural)
    procedural_vertices: int = 3000
    focal: typing.Tuple[float, float] = (5000.0, 5000.0)  # virtual camera of the crop
    camera_3d_size: float = 2.5    # m; sets the depth scale k of the predicted camera
    bbox_3d_size: float = 2.0      # m; depth range mapped onto the heatmap z axis
    sigma: float = 2.5             # input-pose heatmap Gaussian, in heatmap pixels
    pose_to_head: bool = True      # RotationNet also sees the input 2D pose directly, the image features through a
                                   # learned gate that starts closed (3DCrowdNet: false; the pose enters only as
                                   # heatmaps at the stem, and from scratch the head cannot find the orientation)
    image_gate_init: float = 0.0   # model.pose_to_head: the image features' gate at the start (0: closed)
    head_pose_dropout: float = 0.0 # model.pose_to_head: in training, the share of samples whose head does not get the
                                   # input pose directly (it still enters as heatmaps): the head must read the features
    camera: str = 'anchored'       # anchored: solved, not predicted: the root where the predicted body best lies on
                                   # the input 2D pose (common/nets/camera_anchor.py) | centred: t_z = k sigmoid(g + c),
                                   # c puts g = 0 at a person filling the crop, prior on g (loss_weights.cam_prior) |
                                   # published: k sigmoid(g)


@dataclass
class EdgeConfig:
    type: str = 'none'             # none | smpl_overlap (the teacher's) | a student edge of EDGES; the 4th channel
    overlap_source: str = 'render' # smpl_overlap: render per crop from the GT meshes, or read files
                                   # written by tool/make_data/make_overlap_edges.py ('file')
    overlap_method: str = 'geometric'  # geometric (id/depth buffers, exact) | canny (SEFD: Canny of renders)
    overlap_occluding: bool = False    # also mark the occluders' outlines over the people behind them
                                       # (closer to SEFD's Canny difference; geometric only)
    dilation: int = 5              # Canny: local-max filter size (SEFD: 5x5)
    canny_impl: str = 'kornia'     # kornia: SEFD's NMS magnitude, in the model | opencv: binary edges, in the loader
    canny_low: float = 0.1
    canny_high: float = 0.2
    canny_swap_rb: bool = True     # SEFD reverses RGB before its grayscale conversion
    canny_clip: bool = False       # clip the magnitude to [0, 1] (SEFD does not)
    weights: str = ''              # learned edge nets (rcf/hed/pidinet/see): checkpoint path


@dataclass
class DistillConfig:
    loss: str = 'none'             # none | a loss of DISTILL_LOSSES (common/nets/distill.py)
    stages: typing.List[int] = field(default_factory=lambda: [3, 4])     # backbone stages 1..4 distilled
    weights: typing.List[float] = field(default_factory=lambda: [1.0, 2.0])  # one per stage
    temperature: float = 1.0       # kd and cwd softmax temperature
    loss_weighting: str = 'fixed'  # fixed (sum) | uncertainty (one learned log-variance per loss term)
    teacher_ckpt: str = ''         # teacher checkpoint (file or experiment folder)
    init_from_teacher: bool = True  # the student starts from all of the teacher's weights (SEFD)


@dataclass
class DataConfig:
    train_sets_3d: typing.List[str] = field(default_factory=lambda: ['Synthetic'])
    train_sets_2d: typing.List[str] = field(default_factory=list)
    test_set: str = 'PW3D'
    root: str = ''                 # '' = data/ of this repository
    num_workers: int = 4
    image_cache_mb: int = 1024     # decoded images (and overlap edge files) kept in memory, shared out among the
                                   # loader workers (data/image_cache.py); 0: decode every time
    crop_convention: str = 'ours'  # test crops: ours | published (3DCrowdNet's box clipping and float32 warp; set
                                   # when a published snapshot is converted, so its numbers are the published code's)
    on_bad_sample: str = 'skip'    # skip | error
    input_pose: str = 'detector'   # the training input 2D pose. detector: what the test-time detector gives (its
                                   # joints only: COCO-17 + neck + pelvis; missed joints absent; the synthetic set
                                   # replays its simulated detector, the others get PoseFix errors) | published:
                                   # 3DCrowdNet's (PoseFix on the COCO joints, clean GT on all 30, GT truncation mask)


@dataclass
class LossWeights:
    """Weight of each loss term in the total (3DCrowdNet: 1 each; it has no smpl_root, which is in smpl_pose there,
    nor cam_prior)."""
    smpl_root: float = 10.0        # the orientation drives every other term: learnt first, the rest follow
    body_joint_img: float = 1.0
    smpl_joint_img: float = 1.0
    smpl_pose: float = 1.0
    smpl_shape: float = 1.0
    body_joint_proj: float = 1.0
    body_joint_cam: float = 1.0
    smpl_joint_cam: float = 1.0
    cam_prior: float = 0.01        # model.camera=centred: mean g^2, keeps the depth logit out of sigmoid saturation


@dataclass
class TrainConfig:
    batch_size: int = 64           # per GPU / process
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    lr_dec_epochs: typing.List[int] = field(default_factory=lambda: [15])
    lr_dec_factor: float = 10.0
    warmup_iters: int = 0          # linear lr warm-up over the first N iterations (0: none)
    end_epoch: int = 20
    amp: bool = False
    grad_clip: float = 0.0         # 0 = off
    root_loss: str = 'matrix'      # matrix: L1 on the root's rotation matrix | axis_angle: in smpl_pose (the reference)
    seed: int = 0
    print_freq: int = 20
    max_iters: int = 0             # 0 = full epochs; >0 caps iterations per epoch (smoke runs)
    ckpt_every: int = 1000         # also checkpoint every N iterations (0: only at epoch ends); exact resume
    vis_every: int = 500           # TensorBoard images every N iterations (0: never)
    val_every: int = 0             # validate every N epochs, keeping best.pth.tar by MPJPE (0: never)
    deterministic: bool = False    # torch.use_deterministic_algorithms (bit-exact reruns; slower on GPUs)
    loss_weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class TestConfig:
    batch_size: int = 64
    subset: str = ''               # 3DPW subset name ('' = full split)


@dataclass
class RefineConfig:
    """How the demo's --refine fits each person's SMPL to the detected 2D keypoints (common/body/fitting.py). The
    terms are per person; the data term is in squared box heights."""
    iters: int = 60                # Adam steps on all parameters, after iters // 2 on the root's position and turn
    lr: float = 0.04
    conf_thr: float = 0.5          # keypoints at or below this detector score are not fitted
    sigma: float = 0.3             # Geman-McClure scale (box heights): larger errors count less and less
    w_net: float = 0.002           # pull toward the network's body pose (squared radians)
    w_prior: float = 0.0002        # the pose prior learnt from the synthetic poses (tool/make_data/fit_pose_prior.py)
    w_angle: float = 0.1           # knees and elbows bent backwards (squared radians)
    w_shape: float = 0.0005        # squared shape coefficients


@dataclass
class Config:
    mode: str = 'baseline'         # baseline | teacher | student
    exp_name: str = ''             # experiment folder prefix ('' = mode)
    output_dir: str = 'output'
    model: ModelConfig = field(default_factory=ModelConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)

    @property
    def in_channels(self):
        return 3 if self.edge.type == 'none' else 4

    def to_dict(self):
        return dataclasses.asdict(self)


def _valid_keys(obj, prefix=''):
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _valid_keys(value, prefix + f.name + '.')
        else:
            keys.append(prefix + f.name)
    return keys


def _coerce(value, tp, key):
    """Check/convert a YAML value to the field's annotated type."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value] if origin is list else value
        if not isinstance(value, (list, tuple)):
            raise UserError(f'config key {key!r} expects a list, got {value!r}')
        args = typing.get_args(tp)
        item_types = args if origin is tuple and args and args[-1] is not Ellipsis else [args[0]] * len(value)
        if origin is tuple and len(item_types) != len(value):
            raise UserError(f'config key {key!r} expects {len(item_types)} values, got {value!r}')
        out = [_coerce(v, t, key) for v, t in zip(value, item_types)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f'config key {key!r} expects true/false, got {value!r}')
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and value is None:
        return ''
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise UserError(f'config key {key!r} expects {tp.__name__}, got {value!r}')


def _set(cfg, key, value, source):
    node, parts = cfg, key.split('.')
    for i, part in enumerate(parts):
        names = {f.name for f in dataclasses.fields(node)}
        if part not in names:
            full = '.'.join(parts[:i + 1])
            raise UserError(f'unknown config key {full!r} in {source}{closest(key, _valid_keys(cfg))}')
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(node, part)):
                if not isinstance(value, dict):
                    raise UserError(f'config key {key!r} in {source} is a section; give it a mapping')
                for k, v in value.items():
                    _set(cfg, f'{key}.{k}', v, source)
            else:
                hints = typing.get_type_hints(type(node))
                setattr(node, part, _coerce(value, hints[part], key))
            return
        node = getattr(node, part)
        if not dataclasses.is_dataclass(node):
            raise UserError(f'config key {".".join(parts[:i + 1])!r} in {source} is not a section')


def update_config(cfg, mapping, source='<dict>'):
    if not isinstance(mapping, dict):
        raise UserError(f'{source} must hold a mapping of config keys')
    for key, value in mapping.items():
        _set(cfg, str(key), value, source)
    return cfg


def parse_overrides(items):
    """['train.lr=1e-3', 'data.train_sets_3d=[MuCo,Human36M]'] -> {key: value} (YAML-typed values)."""
    out = {}
    for item in items or []:
        if '=' not in item:
            raise UserError(f'override {item!r} must look like key=value (e.g. train.lr=1e-4)')
        key, raw = item.split('=', 1)
        try:
            value = load_yaml_bounded(raw, f'override {key}') if raw.strip() else ''
        except yaml.YAMLError:
            value = raw
        # YAML reads 1e-4 as a string; floats written that way are common on command lines
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in '.eE') else value
            except ValueError:
                pass
        out[key.strip()] = value
    return out



def fill_added_keys(mapping):
    """A saved config mapping with the keys it predates set to what it meant (ADDED_KEYS)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in mapping.items()}
    for key, value in ADDED_KEYS.items():
        section, name = key.split('.')
        sec = out.setdefault(section, {})
        if isinstance(sec, dict) and name not in sec:
            sec[name] = value
    return out


# the keys that say where a run writes: from the command line and the defaults, never from a saved config
WRITE_PLACES = ('output_dir', 'exp_name')


def saved_settings(mapping):
    """A saved config (a checkpoint's, an experiment's config.yaml) as a run takes it: the keys it predates set to what
    they meant (fill_added_keys), WRITE_PLACES left out (a file handed in never decides where a run writes)."""
    return {k: v for k, v in fill_added_keys(mapping).items() if k not in WRITE_PLACES}


# model.vposer_ckpt value: the VPoser decoder's weights come with the model checkpoint (3DCrowdNet/SEFD snapshots)
VPOSER_FROM_CHECKPOINT = 'checkpoint'


# Every number of the config: (lowest, highest) valid value, both included (None: no upper end). check_numbers
# refuses NaN, inf and anything outside, naming the closest valid value; a numeric field missing here is a
# programming error (tests/test_bad_inputs.py sets every numeric key to NaN, inf and -1e9).
NUMBER_RANGES = {
    'model.input_size': (64, 1024), 'model.procedural_vertices': (100, 100000), 'model.focal': (1.0, 1e6),
    'model.camera_3d_size': (0.1, 100.0), 'model.bbox_3d_size': (0.1, 100.0), 'model.sigma': (0.1, 64.0),
    'edge.dilation': (1, 63), 'edge.canny_low': (0.0, None), 'edge.canny_high': (0.0, None),
    'distill.stages': (1, 4), 'distill.weights': (0.0, None), 'distill.temperature': (0.01, 100.0),
    'data.num_workers': (0, 256), 'data.image_cache_mb': (0, 1 << 22),
    **{f'train.loss_weights.{f.name}': (0.0, None) for f in dataclasses.fields(LossWeights)},
    'train.batch_size': (1, 1 << 20), 'train.lr': (0.0, None), 'train.lr_backbone': (0.0, None),
    'train.lr_dec_epochs': (0, None), 'train.lr_dec_factor': (1.0, None), 'train.warmup_iters': (0, None),
    'train.end_epoch': (1, 1 << 20), 'train.grad_clip': (0.0, None), 'train.seed': (0, 2 ** 32 - 1),
    'train.print_freq': (1, None), 'train.max_iters': (0, None), 'train.ckpt_every': (0, None),
    'train.vis_every': (0, None), 'train.val_every': (0, None), 'test.batch_size': (1, 1 << 20),
    'model.image_gate_init': (-10.0, 10.0), 'model.head_pose_dropout': (0.0, 0.95),
    'refine.iters': (1, 100000), 'refine.lr': (1e-6, 10.0), 'refine.conf_thr': (0.0, 0.99), 'refine.sigma': (1e-3, 10.0),
    'refine.w_net': (0.0, None), 'refine.w_prior': (0.0, None), 'refine.w_angle': (0.0, None),
    'refine.w_shape': (0.0, None),
}
# what a number means where the range alone does not say it
NUMBER_HINTS = {
    'train.lr_dec_factor': 'it divides the lr at each of train.lr_dec_epochs: 10 = a tenth, 1 = no decay',
    'train.max_iters': '0 = full epochs', 'train.ckpt_every': '0 = only at epoch ends', 'train.vis_every': '0 = never',
    'train.val_every': '0 = never', 'train.seed': "numpy's seed range",
}


def config_value(cfg, key):
    node = cfg
    for part in key.split('.'):
        node = getattr(node, part)
    return node


def check_numbers(cfg):
    """Every numeric key (and every item of a numeric list) finite and inside NUMBER_RANGES; one line naming the key,
    the range and the closest valid value otherwise."""
    for key in _valid_keys(cfg):
        value = config_value(cfg, key)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            continue
        for v in items:
            check_number(key, v, *NUMBER_RANGES[key], NUMBER_HINTS.get(key, ''), config_value(Config(), key))
    size = cfg.model.input_size
    if size % 32:
        raise UserError(f'model.input_size must be a multiple of 32 (the backbone strides), got {size}; the closest '
                        f'valid value is {min(max(32 * round(size / 32), 64), 1024)}')
    if cfg.edge.dilation % 2 == 0:
        raise UserError(f'edge.dilation is the side of a centred max filter: an odd number, got {cfg.edge.dilation}; '
                        f'the closest valid value is {cfg.edge.dilation + 1}')
    if cfg.edge.canny_low > cfg.edge.canny_high:
        raise UserError(f'edge.canny_low {cfg.edge.canny_low} is above edge.canny_high {cfg.edge.canny_high}: the '
                        f'hysteresis needs low <= high')


def check_exp_name(name):
    """exp_name names one folder inside output_dir: a separator would put it elsewhere (or anywhere, absolute)."""
    if re.search(r'[/\\\0]', name):
        plain = re.sub(r'[/\\\0]+', '_', name).strip('._') or 'run'
        raise UserError(f'exp_name {name!r} must be a plain folder name (the experiment folder is made inside '
                        f'output_dir; set output_dir for another place); the closest valid value is {plain!r}')


def validate(cfg):
    def must(cond, msg):
        if not cond:
            raise UserError(msg)
    must(cfg.mode in MODES, f'mode {cfg.mode!r} is not one of {MODES}{closest(cfg.mode, MODES)}')
    edge_types = ('none', 'smpl_overlap', *EDGES.names())
    must(cfg.edge.type in edge_types,
         f'edge.type {cfg.edge.type!r} is not one of {edge_types}{closest(cfg.edge.type, edge_types)}')
    must(cfg.model.pose_head in ('rot6d', 'vposer'), 'model.pose_head must be rot6d or vposer')
    must(cfg.model.camera in CAMERAS, f'model.camera must be one of {CAMERAS}')
    must(cfg.model.pose2feat in ('residual', 'published'), 'model.pose2feat must be residual or published')
    must(cfg.model.edge_init in EDGE_INITS, f'model.edge_init must be one of {EDGE_INITS}')
    must(cfg.model.pose_head != 'vposer' or cfg.model.vposer_ckpt,
         f'model.pose_head=vposer needs model.vposer_ckpt (a VPoser v1 snapshot, or {VPOSER_FROM_CHECKPOINT!r} when '
         f'the model checkpoint carries the VPoser weights, as 3DCrowdNet/SEFD snapshots do); use '
         f'model.pose_head=rot6d to train without one')
    if cfg.mode == 'baseline':
        must(cfg.edge.type == 'none', f'mode baseline takes no edge channel; set edge.type=none '
                                      f'(got {cfg.edge.type!r})')
    if cfg.mode == 'teacher':
        must(cfg.edge.type == 'smpl_overlap', 'mode teacher sees the SMPL overlap edge: set edge.type=smpl_overlap')
    if cfg.mode == 'student':
        must(cfg.edge.type not in ('none', 'smpl_overlap'),
             f'mode student needs an edge it can compute at test time: edge.type={"|".join(EDGES.names())}')
        must(cfg.distill.loss == 'none' or cfg.distill.teacher_ckpt,
             'a distilled student needs distill.teacher_ckpt (or distill.loss=none for the edge-only ablation)')
    problem = stage_problem(cfg.distill.stages, cfg.distill.weights)
    must(problem is None, problem)
    must(cfg.data.on_bad_sample in ('skip', 'error'), 'data.on_bad_sample must be skip or error')
    must(cfg.data.input_pose in INPUT_POSES, f'data.input_pose must be one of {INPUT_POSES}')
    must(cfg.data.crop_convention in ('ours', 'published'), 'data.crop_convention must be ours or published')
    must(cfg.edge.overlap_source in ('render', 'file'), 'edge.overlap_source must be render or file')
    must(cfg.edge.overlap_method in ('geometric', 'canny'), 'edge.overlap_method must be geometric or canny')
    must(cfg.edge.canny_impl in ('kornia', 'opencv'), 'edge.canny_impl must be kornia or opencv')
    must(cfg.train.root_loss in ('matrix', 'axis_angle'), 'train.root_loss must be matrix or axis_angle')
    must(cfg.distill.loss_weighting in ('fixed', 'uncertainty'), 'distill.loss_weighting must be fixed or uncertainty')
    losses = ('none', *DISTILL_LOSSES.names())
    must(cfg.distill.loss in losses,
         f'distill.loss {cfg.distill.loss!r} is not one of {losses}{closest(cfg.distill.loss, losses)}')
    must(cfg.mode == 'student' or cfg.distill.loss == 'none',
         f'distill.loss={cfg.distill.loss} needs mode=student (a {cfg.mode} has no teacher)')
    check_numbers(cfg)
    check_exp_name(cfg.exp_name)
    return cfg


def read_yaml(yaml_path):
    """The mapping of an experiment YAML file (one line for a missing or invalid file)."""
    path = resolve_path(yaml_path)
    if not path.is_file():
        raise UserError(f'config file {yaml_path} not found (experiment files live in assets/yaml/)')
    if path.stat().st_size > MAX_YAML_BYTES:
        raise UserError(f'config file {path} is {path.stat().st_size >> 20} MB: not an experiment file (those are a '
                        f'few KB)')
    try:
        mapping = load_yaml_bounded(path.read_text(), f'config file {path}')
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f'config file {path} is not valid YAML: {str(e).splitlines()[0][:160]}') from e
    if mapping is None:   # an empty file would silently train every default
        raise UserError(f'config file {path} is empty; an experiment file sets at least mode and the data sets '
                        f'(examples: assets/yaml/)')
    if not isinstance(mapping, dict):
        raise UserError(f'config file {path} holds a YAML {type(mapping).__name__}, not a mapping of keys')
    return mapping, path


def load_yaml_into(cfg, yaml_path):
    mapping, path = read_yaml(yaml_path)
    return update_config(cfg, translate_published(mapping, path), str(path))


def published_defaults(cfg):
    """cfg with the keys of ADDED_KEYS at their published values (published checkpoints and experiment files)."""
    return update_config(cfg, fill_added_keys({}), 'the published defaults')


def load_saved_config(yaml_path, overrides=None):
    """The config.yaml an experiment folder saved (keys it predates as they were then), then overrides."""
    mapping, path = read_yaml(yaml_path)
    cfg = update_config(Config(), saved_settings(mapping), str(path))
    return validate(update_config(cfg, parse_overrides(overrides), 'the command line'))


def load_config(yaml_path=None, overrides=None):
    cfg = Config()
    if yaml_path:
        load_yaml_into(cfg, yaml_path)
    update_config(cfg, parse_overrides(overrides), 'the command line')
    return validate(cfg)


def make_exp_dir(cfg, now=None):
    """output/<name>_<YYYYmmdd-HHMMSS>[_k]/ with log/, checkpoint/, result/, tb/ and the resolved config.yaml."""
    stamp = (now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')
    base = resolve_path(cfg.output_dir) / f'{cfg.exp_name or cfg.mode}_{stamp}'
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            k += 1
            path = base.with_name(f'{base.name}_{k}')
    for sub in ('log', 'checkpoint', 'result', 'tb'):
        (path / sub).mkdir()
    save_config(cfg, path / 'config.yaml')
    return path


def save_config(cfg, path):
    from common.io import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(_plain(cfg.to_dict()), sort_keys=False))


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
