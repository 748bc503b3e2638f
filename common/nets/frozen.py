"""A frozen network held by another one without becoming part of it.

The student's teacher and its edge estimators are used in the forward pass, but must stay out of the
student's state_dict (checkpoints), parameters (optimizer, DDP) and train() (they always run in eval
mode: BatchNorm statistics never drift, dropout stays off). `Frozen` keeps the module in a plain list,
so nn.Module does not register it, and forwards `.to()` / `.half()` / channels_last so it still moves
with its owner.
"""
import torch
import torch.nn as nn


class Frozen(nn.Module):
    def __init__(self, module: nn.Module):
        super().__init__()
        module.eval().requires_grad_(False)
        self._held = [module]

    @property
    def module(self) -> nn.Module:
        return self._held[0]

    def _apply(self, fn, recurse=True):
        self.module._apply(fn)
        return super()._apply(fn, recurse)

    def train(self, mode=True):
        self.training = False
        self.module.eval()
        return self

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def extra_repr(self):
        return f'{type(self.module).__name__} (frozen, eval, not saved)'
