"""One registry per kind of plug-in (backbones, edges, distillation losses, datasets)."""
import difflib

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
    def __init__(self, kind):
        self.kind = kind
        self._items = {}

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
            raise UnknownName(f'unknown {self.kind} {name!r}{closest(name, self._items)}; '
                              f'known: {", ".join(sorted(self._items))}')
        return self._items[name]

    def build(self, name, *args, **kwargs):
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name):
        return name in self._items

    def names(self):
        return sorted(self._items)


BACKBONES = Registry('backbone')
EDGES = Registry('edge')
DISTILL_LOSSES = Registry('distillation loss')
DATASETS = Registry('dataset')
