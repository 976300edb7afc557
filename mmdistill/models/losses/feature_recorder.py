"""Forward-hook recorders of intermediate features (mmrazor style).

A :class:`FeatureRecorder` hooks named sub-modules of a root module
(``root.get_submodule(name)``) and, while recording is switched on, keeps
their outputs: the first call of each module inside a ``record()``
block, so a teacher that is evaluated twice per example keeps the features
of its first evaluation, the one at the student's input. Recording is off
by default, so sampling and other forwards neither store features nor pay
for them.
"""
import contextlib
from typing import Callable, Dict, Iterator, List

from torch import Tensor, nn

from mmdistill.utils import UserError


class FeatureRecorder:
    """Record the outputs of ``names`` of ``root`` during forward passes.

    Args:
        root: the module the names are relative to.
        names: dotted sub-module names, e.g. ``'net.mid.0'``.
        what: 'student' or 'teacher' (for error messages).
    """

    def __init__(self, root: nn.Module, names: List[str],
                 what: str = 'student') -> None:
        self.names = list(dict.fromkeys(names))
        self.data, self.recording, self._handles = {}, False, []
        for name in self.names:
            try:
                mod = root.get_submodule(name)
            except AttributeError as e:
                raise UserError(
                    f'feature_matching: {what} module {name!r} not found '
                    f'(use a name from {what}.named_modules(), e.g. '
                    "'net.mid.0')") from e
            if isinstance(mod, (nn.ModuleList, nn.ModuleDict)):
                raise UserError(
                    f'feature_matching: {what} module {name!r} is a '
                    f'{type(mod).__name__}, which is never called; name one '
                    f'of its layers, e.g. {name + ".0"!r}')
            self._handles.append(mod.register_forward_hook(
                self._make_hook(name)))

    def _make_hook(self, name: str) -> Callable:

        def hook(module, args, output):
            if self.recording and name not in self.data:
                self.data[name] = output[0] if isinstance(
                    output, (tuple, list)) else output

        return hook

    @contextlib.contextmanager
    def record(self) -> Iterator[Dict[str, Tensor]]:
        """Switch recording on inside the ``with`` block (previous records
        are cleared first)."""
        self.data, self.recording = {}, True
        try:
            yield self.data
        finally:
            self.recording = False

    def remove(self) -> None:
        """Remove the forward hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []
