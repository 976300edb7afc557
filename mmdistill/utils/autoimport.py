"""Import every module of a package so its registry decorators run."""
import importlib
import pkgutil


def import_submodules(package_name, package_path):
    """Import all direct sub-modules and sub-packages of a package."""
    for info in pkgutil.iter_modules(package_path):
        if not info.name.startswith('_'):
            importlib.import_module(f'{package_name}.{info.name}')
