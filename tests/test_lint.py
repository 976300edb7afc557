"""The package, projects and tools pass flake8 and ``isort --check`` with the settings of
setup.cfg (OpenMMLab's); skipped where the tools are not installed
(``pip install -r requirements/tests.txt``)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _run(tool, *args):
    pytest.importorskip(tool, reason=f'{tool} is not installed (pip '
                        'install -r requirements/tests.txt)')
    return subprocess.run([sys.executable, '-m', tool, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_flake8():
    out = _run('flake8', 'mmdistill', 'projects', 'tools')
    assert out.returncode in (0, 1), out.stderr[-2000:]
    found = set()
    for line in out.stdout.splitlines():
        m = re.match(r'(.+?):\d+:\d+: (\w+) ', line)
        assert m, line
        found.add((os.path.relpath(os.path.join(ROOT, m.group(1)), ROOT),
                   m.group(2)))
    assert not found, out.stdout


def test_isort():
    out = _run('isort', '--check-only', 'mmdistill', 'projects', 'tools')
    found = set()
    for line in out.stderr.splitlines():
        m = re.match(r'ERROR: (.+?) Imports are incorrectly sorted', line)
        if m:
            found.add(os.path.relpath(m.group(1), ROOT))
    assert out.returncode in (0, 1), out.stderr[-2000:]
    assert not found, out.stderr
