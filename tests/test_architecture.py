"""The package's import structure (docs/architecture.md): which part may
import which, no import cycles, and the library never importing the digits
experiments, the tools or the tests.

The imports are read from the source (``ast``), so a lazy import inside a
function counts like a module-level one for the direction rules; the cycle
check looks at module-level imports, the ones that run on ``import``.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / 'mmdistill'

#: part -> the parts of the library it may import (besides itself). A part is
#: a top-level sub-package / module of ``mmdistill`` or ``models.<sub>``.
ALLOWED = {
    'version': set(),
    'compat': set(),  # mmengine's package look-up, run by ``import mmdistill``
    '__main__': {'utils'},  # python -m mmdistill TOOL: the package's tools
    'utils': set(),
    'diffusion': set(),
    'registry': set(),
    'datasets': {'utils', 'registry'},
    'models.denoisers': {'utils', 'registry', 'diffusion'},
    'models.losses': {'utils', 'registry', 'diffusion'},
    'models.data_preprocessor': {'utils', 'registry'},
    'models.sampling': {'utils', 'diffusion'},
    'models.wrappers': {'utils', 'registry', 'models.sharding'},
    'models.lora': {'utils'},
    'models.sharding': set(),
    'models.conditions': {'utils'},
    'models.cfg_diffusion': {'utils', 'registry', 'diffusion',
                             'models.sampling', 'models.conditions'},
    'models.classifiers': {'utils', 'registry', 'models.cfg_diffusion'},
    'models.adapters': {'utils', 'registry', 'diffusion', 'models.denoisers',
                        'models.data_preprocessor', 'models.cfg_diffusion',
                        'models.conditions', 'models.lora'},
    'models.distillers': {'utils', 'registry', 'diffusion', 'models.losses',
                          'models.sampling', 'models.cfg_diffusion',
                          'models.conditions', 'models.data_preprocessor',
                          'models.lora', 'models.sharding'},
    'evaluation': {'utils', 'registry', 'diffusion', 'datasets'},
    'engine': {'utils', 'registry', 'evaluation', 'models.distillers',
               'models.cfg_diffusion', 'models.sharding'},
    'synthesis': {'utils', 'registry', 'diffusion', 'datasets', 'evaluation',
                  'models.cfg_diffusion', 'models.adapters'},
    # the package's __init__ re-exports its sub-packages
    'models': {'models.adapters', 'models.cfg_diffusion', 'models.classifiers',
               'models.data_preprocessor', 'models.denoisers',
               'models.distillers', 'models.losses', 'models.sampling',
               'models.wrappers', 'models.conditions'},
    'apis': None,  # the user-facing layer may import any part
    'setup_env': None,  # register_all_modules imports every part
}
#: never imported by the library
OUTSIDE = ('projects', 'tools', 'tests', '_tiny_diffusers')


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def part_of(module):
    """'mmdistill.models.adapters.networks' -> 'models.adapters'."""
    parts = module.split('.')[1:]
    if not parts:
        return None
    if parts[0] == 'models' and len(parts) > 1:
        return 'models.' + parts[1]
    return parts[0]


def imports(path, module_level_only=False, source=None, module=None):
    """Absolute names imported by a file (relative imports resolved);
    ``source`` / ``module`` stand in for the file's text and name."""
    tree = ast.parse(source if source is not None else path.read_text())
    pkg = (module or module_name(path)).split('.')
    if path.name != '__init__.py':
        pkg = pkg[:-1]
    nodes = tree.body if module_level_only else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                mod = '.'.join(base + ([node.module] if node.module else []))
                # 'from . import x' names sub-modules
                if node.module is None:
                    out += [f'{mod}.{a.name}' for a in node.names]
                    continue
                out.append(mod)
            else:
                out.append(node.module)
                out += [f'{node.module}.{a.name}' for a in node.names]
    return out


def library_files():
    # mmdistill/.mim holds the configs and tools of an installed package
    # (links to them in an editable install): not library code
    return sorted(p for p in PKG.rglob('*.py')
                  if '.mim' not in p.relative_to(PKG).parts)


def test_every_file_belongs_to_a_known_part():
    unknown = {part_of(module_name(p)) for p in library_files()} - set(
        ALLOWED) - {None}
    assert not unknown, f'add the new parts to ALLOWED: {sorted(unknown)}'


def violations(path, **kw):
    """The imports of a file that break the direction rules."""
    src = part_of(kw.get('module') or module_name(path))
    allowed = ALLOWED.get(src)
    bad = []
    for name in imports(path, **kw):
        top = name.split('.')[0]
        if top in OUTSIDE:
            bad.append(name)
        if top != 'mmdistill' or allowed is None:
            continue
        dst = part_of(name)
        if dst is None or dst == src or dst not in ALLOWED:
            # 'import mmdistill' itself, or a name inside a part
            continue
        if dst not in allowed and dst != 'setup_env':
            bad.append(name)
    return sorted(set(bad))


@pytest.mark.parametrize('path', library_files(),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_import_direction(path):
    bad = violations(path)
    assert not bad, f'{module_name(path)} may not import {bad}'


def test_no_module_level_import_cycles():
    graph = {}
    files = {module_name(p): p for p in library_files()}
    for mod, path in files.items():
        deps = set()
        for name in imports(path, module_level_only=True):
            # the longest prefix that is a library module
            parts = name.split('.')
            while parts and '.'.join(parts) not in files:
                parts.pop()
            if parts and '.'.join(parts) != mod:
                deps.add('.'.join(parts))
        graph[mod] = deps
    # packages import their own sub-modules; a sub-module importing a
    # sibling through its package is the cycle we look for
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in graph[m]:
            is_parent_pkg = m.startswith(d + '.')
            if is_parent_pkg:
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, f'import cycles: {cycles[:3]}'


def test_rules_catch_violations():
    """The checker itself, on sources that break the rules: the math
    importing the registry (also lazily, inside a function), a model
    importing the engine through a relative import, the library importing
    the digits experiments."""
    steps = PKG / 'diffusion' / 'steps.py'
    assert violations(steps) == []
    assert violations(steps, source='from mmdistill.registry import MODELS',
                      module='mmdistill.diffusion.steps') == [
                          'mmdistill.registry', 'mmdistill.registry.MODELS']
    lazy = 'def f():\n    from mmdistill.utils import UserError\n'
    assert violations(steps, source=lazy, module='mmdistill.diffusion.steps')
    loss = PKG / 'models' / 'losses' / 'guided_l2.py'
    assert violations(loss, source='from ...engine import runner',
                      module='mmdistill.models.losses.guided_l2') == [
                          'mmdistill.engine']
    assert violations(loss, source='import projects.digits.report',
                      module='mmdistill.models.losses.guided_l2') == [
                          'projects.digits.report']
