from .cli import (add_common_args, add_launcher_args, check_finite_arg,
                  check_output_folder, cli_main, explain, load_config,
                  set_local_rank, slurm_env)
from .inference import as_config, init_model, load_for_sampling, load_student
from .inferencer import MMDistillInferencer

__all__ = ['MMDistillInferencer', 'add_common_args', 'add_launcher_args',
           'as_config', 'check_finite_arg', 'check_output_folder',
           'cli_main', 'explain', 'init_model', 'load_config',
           'load_for_sampling', 'load_student', 'set_local_rank', 'slurm_env']
