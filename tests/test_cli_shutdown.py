"""A command run through ``cli_main`` shuts its process group down."""
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import sys
    import torch.distributed as dist
    from mmdistill.apis import cli_main
    from mmdistill.utils import UserError

    dist.init_process_group('gloo', init_method='file://' + sys.argv[1],
                            rank=0, world_size=1)

    @cli_main
    def main():
        dist.all_reduce(__import__('torch').ones(1))
        if sys.argv[2] == 'fail':
            raise UserError('bad input')

    try:
        main()
    finally:
        print('initialized after:', dist.is_initialized())
''')


@pytest.mark.parametrize('mode,code', [('ok', 0), ('fail', 2)])
def test_cli_main_destroys_the_gloo_group(tmp_path, mode, code):
    r = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path / 'pg'),
                        mode], capture_output=True, text=True, timeout=120)
    assert r.returncode == code, r.stderr[-2000:]
    assert 'initialized after: False' in r.stdout, (r.stdout, r.stderr)
    if mode == 'fail':
        assert r.stderr.strip().splitlines()[-1] == 'error: bad input'
