from .cli import add_common_args, cli_main, explain, load_config

__all__ = ['add_common_args', 'cli_main', 'explain', 'load_config']
