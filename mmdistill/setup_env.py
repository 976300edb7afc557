"""Registration of every component, as mmagic's ``register_all_modules``."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every sub-package of mmdistill so its components are in the
    registries, and optionally make ``mmdistill`` the default scope.

    The registries also import their sub-packages on the first look-up
    (``locations``), so building from :mod:`mmdistill.registry` works
    without this call; entry points call it so that mmengine's root
    registries see the components too.

    Args:
        init_default_scope: set the default scope to ``'mmdistill'`` (a new
            scope instance is created when another scope is current).
    """
    import mmdistill.datasets  # noqa: F401
    import mmdistill.engine  # noqa: F401
    import mmdistill.evaluation  # noqa: F401
    import mmdistill.models  # noqa: F401
    import mmdistill.synthesis  # noqa: F401
    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    never_set = not DefaultScope.check_instance_created('mmdistill')
    if current is None and never_set:
        DefaultScope.get_instance('mmdistill', scope_name='mmdistill')
    elif current is None or current.scope_name != 'mmdistill':
        if current is not None:
            warnings.warn(f'the current default scope "{current.scope_name}"'
                          ' is not "mmdistill"; register_all_modules sets '
                          'it to "mmdistill"')
        name = f'mmdistill-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='mmdistill')
