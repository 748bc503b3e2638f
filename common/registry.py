"""One registry per kind of plug-in (backbones, edges, distillation losses, datasets).

A plug-in registers itself when its module is imported; `get` imports that module on first use (the
registry's `locate(name)` says which), so no caller has to import plug-ins it does not use. `modules()` names
every module that holds plug-ins of the kind: `names()` imports them all, so the registry is the one list of the
valid names (for config checks and the message of an unknown name).
"""
import difflib
import importlib

from common.errors import UserError


def closest(name, choices):
    """' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ''


class UnknownName(UserError, KeyError):
    """A name that is not registered: the user's to fix (a config value), and a KeyError for code that asks."""

    def __str__(self):
        return str(self.args[0])


class Registry:
    def __init__(self, kind, locate=None, modules=()):
        self.kind = kind
        self._items = {}
        self._locate, self._modules = locate, modules

    def _import(self, name):
        module = self._locate(name) if self._locate and isinstance(name, str) else None
        if not module:
            return
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if not module.startswith(str(e.name)):  # a missing dependency, not a missing plug-in
                raise

    def register(self, name=None):
        def deco(obj):
            key = name or obj.__name__
            if key in self._items:
                raise KeyError(f'{self.kind} {key!r} is registered twice')
            self._items[key] = obj
            return obj
        return deco

    def get(self, name):
        if name not in self._items:
            self._import(name)
        if name not in self._items:
            known = self.names()
            raise UnknownName(f'unknown {self.kind} {name!r}{closest(name, known)}; known: {", ".join(known)}')
        return self._items[name]

    def build(self, name, *args, **kwargs):
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name):
        if name not in self._items:
            self._import(name)
        return name in self._items

    def names(self):
        """Every registered name (all plug-in modules imported)."""
        for module in (self._modules() if callable(self._modules) else self._modules):
            importlib.import_module(module)
        return sorted(self._items)


_BACKBONE_MODULES = (('hrnet', 'common.nets.hrnet'), ('efficientnet_lite', 'common.nets.efficientnet_lite'),
                     ('', 'common.nets.resnet'))
BACKBONES = Registry('backbone', lambda n: next(m for p, m in _BACKBONE_MODULES if n.startswith(p)),
                     modules=tuple(m for _, m in _BACKBONE_MODULES))
# How the edge channel's stem filters start when a backbone's 3-channel stem is inflated (model.edge_init; torch-free
# for config.validate; common/nets/pretrained.py builds them)
EDGE_INITS = ('luminance', 'published')
# the student edges, one module each (edge.type also takes 'none' and the teacher's 'smpl_overlap')
EDGE_MODULES = ('canny', 'rcf', 'hed', 'pidinet', 'see')
EDGES = Registry('edge', lambda n: f'common.edges.{n}' if n in EDGE_MODULES else None,
                 modules=tuple(f'common.edges.{n}' for n in EDGE_MODULES))
DISTILL_LOSSES = Registry('distillation loss', lambda n: 'common.nets.distill', modules=('common.nets.distill',))


# the distillation losses' shared rule (checked by config.validate and by StageLoss, without importing torch)
def stage_problem(stages, weights):
    """What is wrong with distill.stages / distill.weights (one line), or None: one weight per stage, stages among
    the backbone's 1..4, none twice."""
    stages, weights = list(stages), list(weights)
    if len(stages) != len(weights):
        return f'distill.stages {stages} and distill.weights {weights} must have the same length (one weight per stage)'
    if any(k not in (1, 2, 3, 4) for k in stages):
        return f'distill.stages {stages}: the backbone stages are 1..4'
    if len(set(stages)) != len(stages):
        return f'distill.stages {stages} must not repeat a stage'
    return None
