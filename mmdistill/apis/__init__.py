from .cli import (add_common_args, add_launcher_args, check_finite_arg,
                  check_output_folder, cli_main, explain, load_config,
                  set_local_rank)
from .inference import init_model, load_student

__all__ = ['add_common_args', 'add_launcher_args', 'check_finite_arg',
           'check_output_folder', 'cli_main', 'explain', 'init_model',
           'load_config', 'load_student', 'set_local_rank']
