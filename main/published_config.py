"""The experiment YAML files of 3DCrowdNet (assets/yaml/*.yml) and SEFD (assets/yaml_trianing/*.yml,
assets/yaml_test/*.yml, assets/yaml/*.yml), translated into this project's config.

`main.config.load_yaml_into` passes every YAML mapping through `translate_published`: keys of this config pass
unchanged, keys of the published `Config` classes are translated (each translation logged once), and a
published key asking for something this project does not have stops the run with one line naming the key,
the file and why. Anything else is left to the config's own unknown-key error.

| published key                       | here                                                               |
|-------------------------------------|--------------------------------------------------------------------|
| trainset_3d / trainset_2d / testset | data.train_sets_3d / data.train_sets_2d / data.test_set (a name    |
|                                     |   without a loader in data/ is rejected: AGORA, DOH50K, ...;       |
|                                     |   testset CrowdPose_test = CrowdPose, whose test split is read)    |
| lr, lr_backbone, lr_dec_factor      | train.lr, train.lr_backbone (honoured here; the published set_lr   |
|                                     |   ran every group at lr), train.lr_dec_factor                      |
| lr_dec_epoch, end_epoch             | train.lr_dec_epochs, train.end_epoch                               |
| train_batch_size, test_batch_size   | train.batch_size, test.batch_size (per GPU, as published)          |
| num_thread                          | data.num_workers                                                   |
| resnet_type                         | model.backbone = resnet<n>                                         |
| input_img_shape, output_hm_shape    | model.input_size (square crops, heatmaps input/4; else rejected)   |
| princpt                             | checked: the crop centre (else rejected)                           |
| focal, sigma, bbox_3d_size,         | model.focal, model.sigma, model.bbox_3d_size, model.camera_3d_size |
|   camera_3d_size                    |                                                                    |
| crowd: true                         | test.subset = crowd (3DPW-Crowd)                                   |
| origin: true / false                | nothing (the official split) / rejected: SEFD's ad-hoc occlusion   |
|                                     |   set; use test.subset=oc or pc                                    |
| data_dir, output_dir,               | data.root, output_dir (the same key here), model.smpl_dir          |
|   human_model_path                  |                                                                    |
| dilation                            | edge.dilation = its second kernel (the one SEFD's Canny uses)      |
| distillation_pretrained             | distill.init_from_teacher                                          |
| distillation_module_path            | distill.teacher_ckpt ('putting your path' placeholders: ignored)   |
| RCF_path, edge_module_path          | edge.weights of an rcf / see student                               |
| the variant flags: canny_edge,      | mode, edge.type, distill.loss/stages/weights, decided as SEFD's    |
|   HED_edge, pidinet_edge, srf_edge, |   model does (branch order below; absent flags take SEFD's         |
|   edge_module, SMPL_edge,           |   defaults). distillation_loss: log_softmax_l1 -> log_softmax_l1   |
|   SMPL_overlap, distillation_module,|   (stages 3,4; weights 1,2), L1 -> l1, KD_loss -> kd, ATLoss -> at,|
|   distillation_loss,                |   fsp_loss -> fsp, GC_loss -> gc (stages 1-4, weights 1).          |
|   dilstillation_edge, nothing,      |   dilstillation_edge: Canny, Hed, PiDiNet, RCF, edge_module ->     |
|   teacher_learing                   |   canny, hed, pidinet, rcf, see                                    |
| (VPoser: both releases read        | model.pose_head=vposer, model.vposer_ckpt=that folder, when it is  |
|   human_model_files/smpl/VPOSER_CKPT)|   there ('VPOSERR_CKPT', the README's spelling, too)               |
| first_input, demo, vis, render,     | ignored, logged: they changed weight initialisation, visualisation |
|   inference_testing, smpl_edge_test,|   or GPU selection only (conv1 is inflated from 3-channel weights  |
|   feature_vis, gpu_ids, num_gpus,   |   whenever the model has 4; GPUs and resuming are command-line     |
|   continue_train, use_gt_info: true,|   flags here); false values of the unsupported features below      |
|   Backbone_model: resnet, patch_*,  |                                                                    |
|   compute_grid_shape, Interpolate   |                                                                    |
| rejected when true: cliff, smplify, | features of neither release that run (CLIFF / SMPLify pseudo-GT,   |
|   human_parsing, SMPL_single,       |   DensePose parsing, single/multi-person SMPL edges, EPS/grid      |
|   SMPL_Multi, EPS_*, grid_plus,     |   inputs, LUPerson), test_train (read by no code; SEFD's own       |
|   luperson; test_train;             |   cfg.update rejects it), HRNet, RootNet boxes, the derived        |
|   Backbone_model: hrnet;            |   folders (set output_dir / exp_name instead)                      |
|   use_gt_info: false; cur_dir,      |                                                                    |
|   root_dir, save_folder, model_dir, |                                                                    |
|   vis_dir, log_dir, result_dir,     |                                                                    |
|   mano_path, smpl_path              |                                                                    |

Variant (SEFD's forward, first match): canny_edge / srf_edge / pidinet_edge / HED_edge -> an edge-only student
(canny / rcf / pidinet / hed, distill.loss none); SMPL_edge and not distillation_module and not nothing -> teacher
(edge.type smpl_overlap; needs SMPL_overlap); edge_module -> edge-only see student; distillation_module -> a
distilled student (dilstillation_edge, distillation_loss); otherwise the 3-channel baseline. A file with none of
these flags (every 3DCrowdNet file) leaves mode alone.
"""
import logging
from pathlib import Path

from common.errors import UserError
from common.paths import ROOT
from data.registry import DATASETS

log = logging.getLogger('sefd')

OUR_TOP_KEYS = ('mode', 'exp_name', 'output_dir', 'model', 'edge', 'distill', 'data', 'train', 'test')
PLACEHOLDER = 'putting your path'

VARIANT_FLAGS = ('canny_edge', 'HED_edge', 'pidinet_edge', 'srf_edge', 'edge_module', 'SMPL_edge', 'SMPL_overlap',
                 'distillation_module', 'distillation_loss', 'dilstillation_edge', 'nothing', 'teacher_learing')
# SEFD's Config defaults, for variant flags a file does not set
SEFD_DEFAULTS = {'canny_edge': False, 'HED_edge': False, 'pidinet_edge': False, 'srf_edge': False,
                 'edge_module': False, 'SMPL_edge': True, 'SMPL_overlap': True, 'distillation_module': True,
                 'distillation_loss': 'KD_loss', 'dilstillation_edge': 'Canny', 'nothing': False,
                 'teacher_learing': False}
EDGE_NAMES = {'Canny': 'canny', 'Hed': 'hed', 'HED': 'hed', 'PiDiNet': 'pidinet', 'RCF': 'rcf',
              'edge_module': 'see', 'Edge_Module': 'see'}
ALL_STAGES = ([1, 2, 3, 4], [1.0, 1.0, 1.0, 1.0])
PUBLISHED_DISTILL_LOSSES = {'log_softmax_l1': ('log_softmax_l1', [3, 4], [1.0, 2.0]), 'L1': ('l1', *ALL_STAGES),
                            'KD_loss': ('kd', *ALL_STAGES), 'ATLoss': ('at', *ALL_STAGES),
                            'fsp_loss': ('fsp', *ALL_STAGES), 'GC_loss': ('gc', *ALL_STAGES)}

SIMPLE = {'lr': 'train.lr', 'lr_backbone': 'train.lr_backbone', 'lr_dec_factor': 'train.lr_dec_factor',
          'lr_dec_epoch': 'train.lr_dec_epochs', 'end_epoch': 'train.end_epoch', 'train_batch_size': 'train.batch_size',
          'test_batch_size': 'test.batch_size', 'num_thread': 'data.num_workers', 'focal': 'model.focal',
          'sigma': 'model.sigma', 'bbox_3d_size': 'model.bbox_3d_size', 'camera_3d_size': 'model.camera_3d_size',
          'data_dir': 'data.root', 'human_model_path': 'model.smpl_dir',
          'distillation_pretrained': 'distill.init_from_teacher'}
IGNORED = {
    'first_input': 'conv1 is inflated from 3-channel weights whenever the model has 4 input channels',
    'demo': 'demo mode: use demo/demo.py', 'vis': 'visualisation only', 'render': 'visualisation only',
    'feature_vis': 'visualisation only', 'inference_testing': 'it only changed weight initialisation',
    'smpl_edge_test': 'it only changed weight initialisation', 'gpu_ids': 'GPUs: the --gpu flag',
    'num_gpus': 'GPUs: the --gpu flag', 'continue_train': 'resuming: the command line',
    'patch_size': 'grid inputs only', 'patch_n_sigma': 'grid inputs only', 'compute_grid_shape': 'grid inputs only',
    'Interpolate': 'grid inputs only',
}
EDGE_WEIGHTS = {'RCF_path': 'rcf', 'edge_module_path': 'see'}   # edge.weights of that student
# features that exist here only in their 'off' state: ignored when false, rejected when true
OFF_ONLY = {
    'cliff': 'CLIFF pseudo-GT is not supported (SEFD cannot reach it either: cliff is not in its Config)',
    'smplify': 'SMPLify pseudo-GT is not supported (no code in SEFD reads it)',
    'human_parsing': 'DensePose human-parsing inputs are not supported',
    'SMPL_single': "single-person SMPL edges are not supported; the teacher's edge here is the overlap edge",
    'SMPL_Multi': "multi-person SMPL edges are not supported; the teacher's edge here is the overlap edge",
    'EPS_plus': 'EPS inputs are not supported', 'EPS_gray': 'EPS inputs are not supported',
    'EPS_grid_plus': 'EPS inputs are not supported', 'EPS_edge_plus': 'EPS inputs are not supported',
    'grid_plus': 'grid inputs are not supported', 'luperson': 'LUPerson weights are not supported',
    'test_train': 'no code in 3DCrowdNet or SEFD reads it (SEFD\'s own cfg.update rejects it); delete the line',
}
DERIVED_DIRS = ('cur_dir', 'root_dir', 'save_folder', 'model_dir', 'vis_dir', 'log_dir', 'result_dir', 'mano_path',
                'smpl_path')

NOTES = {'lr_backbone': "honoured here, while 3DCrowdNet/SEFD's set_lr ran the backbone at lr: set "
                        "train.lr_backbone to the lr to match them"}
# every key understood (translated, ignored or rejected with a reason)
PUBLISHED_KEYS = frozenset(SIMPLE) | frozenset(IGNORED) | frozenset(OFF_ONLY) | frozenset(DERIVED_DIRS) | frozenset(
    VARIANT_FLAGS) | frozenset(('trainset_3d', 'trainset_2d', 'testset', 'resnet_type', 'input_img_shape',
                                'output_hm_shape', 'princpt', 'crowd', 'origin', 'output_dir', 'dilation',
                                'distillation_module_path', 'Backbone_model', 'use_gt_info')) | frozenset(EDGE_WEIGHTS)

# Keys this project added to 3DCrowdNet's config, at their published values: what a published file means, and
# what a config saved before a key existed meant by leaving it out (so older experiment folders continue as trained).
ADDED_KEYS = {'model.pose_to_head': False, 'model.camera': 'published', 'data.input_pose': 'published',
              'model.pose2feat': 'published', 'model.edge_init': 'published', 'model.image_gate_init': 0.0,
              'model.head_pose_dropout': 0.0,
              'train.loss_weights': {'smpl_root': 1.0, 'cam_prior': 0.0}}

_logged = set()


def datasets_here():
    return DATASETS.names()


# SEFD's test files name some sets by their split; here the split is the loader's (test)
PUBLISHED_TEST_SETS = {'CrowdPose_test': 'CrowdPose'}


class _Translation:
    def __init__(self, path):
        self.path, self.out, self.notes = path, {}, []

    def reject(self, key, why):
        raise UserError(f'{self.path}: published key {key!r} has no meaning here: {why}')

    def put(self, key, target, value):
        self.out[target] = value
        self.notes.append((key, f'{target}={value!r}' + (f' ({NOTES[key]})' if key in NOTES else '')))

    def ignore(self, key, why):
        self.notes.append((key, f'ignored ({why})'))

    def dataset(self, key, name):
        name = PUBLISHED_TEST_SETS.get(name, name) if key == 'testset' else name
        have = datasets_here()
        if name not in have:
            self.reject(key, f'no loader for dataset {name!r} (loaders: {", ".join(have)})')
        return name


def _translate_key(t, key, value, mapping):
    if key in SIMPLE:
        t.put(key, SIMPLE[key], value)
    elif key in IGNORED:
        t.ignore(key, IGNORED[key])
    elif key in OFF_ONLY:
        t.reject(key, OFF_ONLY[key]) if value else t.ignore(key, 'false: the default here')
    elif key in DERIVED_DIRS:
        t.reject(key, 'a folder derived from the experiment folder; set output_dir / exp_name instead')
    elif key in ('trainset_3d', 'trainset_2d'):
        names = [value] if isinstance(value, str) else list(value or [])
        t.put(key, f'data.train_sets_{key[-2:]}', [t.dataset(key, n) for n in names])
    elif key == 'testset':
        t.put(key, 'data.test_set', t.dataset(key, value))
    elif key == 'resnet_type':
        t.put(key, 'model.backbone', f'resnet{value}')
    elif key == 'input_img_shape':
        if len(set(value)) != 1:
            t.reject(key, f'{value}: crops here are square (model.input_size)')
        t.put(key, 'model.input_size', int(value[0]))
    elif key == 'output_hm_shape':
        size = mapping.get('input_img_shape', [256])[0]
        if list(value) != [size // 4] * 3:
            t.reject(key, f'{value}: heatmaps here are input_size/4 = {size // 4} on each axis')
        t.ignore(key, f'implied by the {size} px crop')
    elif key == 'princpt':
        size = mapping.get('input_img_shape', [256])[0]
        if list(value) != [size / 2, size / 2]:
            t.reject(key, f'{value}: the virtual principal point here is the crop centre ({size / 2}, {size / 2})')
        t.ignore(key, 'the crop centre, as here')
    elif key == 'crowd':
        t.put(key, 'test.subset', 'crowd') if value else t.ignore(key, 'false: the full split')
    elif key == 'origin':
        if not value:
            t.reject(key, "false builds SEFD's ad-hoc occlusion set (mixed validation/test sequences); use "
                          "test.subset=oc or test.subset=pc (3DPW-OC / 3DPW-PC)")
        t.ignore(key, 'true: the official split')
    elif key == 'dilation':
        k = value[1]
        if isinstance(k, (list, tuple)) and len(set(k)) != 1:
            t.reject(key, f'{k}: the Canny dilation here is square')
        t.put(key, 'edge.dilation', int(k[0] if isinstance(k, (list, tuple)) else k))
    elif key == 'distillation_module_path':
        if PLACEHOLDER in str(value):
            t.ignore(key, 'the unedited placeholder; set distill.teacher_ckpt')
        else:
            t.put(key, 'distill.teacher_ckpt', value)
    elif key in EDGE_WEIGHTS and not any(k in mapping for k in VARIANT_FLAGS):
        t.ignore(key, f'only an edge.type={EDGE_WEIGHTS[key]} student reads it')   # else: with the variant
    elif key == 'Backbone_model':
        if value != 'resnet':
            t.reject(key, f'{value!r}: the backbones here are ResNets (model.backbone)')
        t.ignore(key, 'resnet: model.backbone comes from resnet_type')
    elif key == 'use_gt_info':
        if not value:
            t.reject(key, 'false reads RootNet boxes, which are not supported')
        t.ignore(key, 'true: ground-truth boxes, as here')


def _variant(t, mapping):
    """mode / edge / distill from SEFD's flags, in the order of SEFD's forward."""
    f = {k: mapping.get(k, SEFD_DEFAULTS[k]) for k in VARIANT_FLAGS}
    keys = ', '.join(k for k in VARIANT_FLAGS if k in mapping)
    nodistil = {'canny_edge': 'canny', 'srf_edge': 'rcf', 'pidinet_edge': 'pidinet', 'HED_edge': 'hed'}
    distill = ('none', [3, 4], [1.0, 2.0])
    first = next((k for k in nodistil if f[k]), None)
    if first:
        mode, edge = 'student', nodistil[first]
    elif f['SMPL_edge'] and not f['distillation_module'] and not f['nothing']:
        mode, edge = 'teacher', 'smpl_overlap'
    elif f['edge_module']:
        mode, edge = 'student', 'see'
    elif f['distillation_module']:
        mode = 'student'
        edge = EDGE_NAMES.get(f['dilstillation_edge'])
        if edge is None:
            t.reject('dilstillation_edge', f'{f["dilstillation_edge"]!r} is not one of {sorted(EDGE_NAMES)}')
        distill = PUBLISHED_DISTILL_LOSSES.get(f['distillation_loss'])
        if distill is None:
            t.reject('distillation_loss', f'{f["distillation_loss"]!r} is not one of '
                                          f'{sorted(PUBLISHED_DISTILL_LOSSES)} (SEFD names KL_loss and PKTLoss but '
                                          f'implements neither)')
    else:
        mode, edge = 'baseline', 'none'
    if f['teacher_learing'] and mode != 'teacher':
        t.reject('teacher_learing', f'true, but the other flags make a {mode}')
    if (mode == 'teacher' or distill[0] != 'none') and not f['SMPL_overlap']:
        t.reject('SMPL_overlap', "false asks for another SMPL edge; the teacher's edge here is the overlap edge")
    t.out.update({'mode': mode, 'edge.type': edge, 'distill.loss': distill[0], 'distill.stages': distill[1],
                  'distill.weights': distill[2]})
    t.notes.append((keys, f'mode={mode} edge.type={edge} distill.loss={distill[0]}' + (
        f' distill.stages={distill[1]} distill.weights={distill[2]}' if distill[0] != 'none' else '')))
    for key in (k for k in EDGE_WEIGHTS if k in mapping):
        if EDGE_WEIGHTS[key] != edge or PLACEHOLDER in str(mapping[key]):
            t.ignore(key, f'not an edge.type={EDGE_WEIGHTS[key]} student' if EDGE_WEIGHTS[key] != edge else
                     'the unedited placeholder; set edge.weights')
        else:
            t.put(key, 'edge.weights', mapping[key])


def _vposer(t, mapping, out):
    """Both releases decode the body pose with VPoser v1 from human_model_files/smpl/VPOSER_CKPT: where that folder
    is, use it (pose_head vposer); else keep the pose head (rot6d, or a checkpoint's own VPoser)."""
    if 'model.pose_head' in out or 'pose_head' in (out.get('model') or {}):
        return
    base = Path(str(out.get('model.smpl_dir') or ROOT / 'common' / 'utils' / 'human_model_files'))
    base = base if base.is_absolute() else ROOT / base
    found = next((p for p in (base / 'smpl' / 'VPOSER_CKPT', base / 'smpl' / 'VPOSERR_CKPT') if p.exists()), None)
    if found is None:
        t.notes.append(('VPoser', f'not found at {base / "smpl" / "VPOSER_CKPT"}: the pose head stays as configured '
                                  f'(rot6d, or the VPoser inside a published checkpoint)'))
        return
    out.update({'model.pose_head': 'vposer', 'model.vposer_ckpt': str(found)})
    t.notes.append(('VPoser', f'model.pose_head=vposer model.vposer_ckpt={found}'))


def translate_published(mapping, path):
    """A YAML mapping with published keys -> one of this config (dotted keys); unchanged when it has none."""
    if not isinstance(mapping, dict) or not any(k in PUBLISHED_KEYS and k not in OUR_TOP_KEYS for k in mapping):
        return mapping
    t = _Translation(path)
    out, variant_done = {}, False
    for key, value in mapping.items():
        if key in OUR_TOP_KEYS:            # output_dir means the same in both: where experiment folders go
            out[key] = value
        elif key in VARIANT_FLAGS:
            if not variant_done:
                _variant(t, mapping)
                variant_done = True
        elif key in PUBLISHED_KEYS:
            try:
                _translate_key(t, key, value, mapping)
            except (TypeError, ValueError, IndexError, KeyError):
                t.reject(key, f'its value {value!r} is not what the published config holds there')
        else:
            out[key] = value               # unknown anywhere: the config's own error names the closest key
        out.update(t.out)
        t.out = {}
    _vposer(t, mapping, out)
    for key, value in ADDED_KEYS.items():   # a published file means the published model and losses
        out.setdefault(key, value)
    for key, note in t.notes:
        if (str(path), key, note) not in _logged:
            _logged.add((str(path), key, note))
            log.info(f'{Path(path).name}: {key} -> {note}')
    return out
