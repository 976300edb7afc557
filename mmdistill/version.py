"""The version of mmdistill: ``setup.py`` reads it from this file, and
``mmdistill.__version__`` re-exports it."""

__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Split a version into its parts.

    Args:
        version_str (str): a version such as ``'0.1.0'`` or ``'0.2.0rc1'``.

    Returns:
        tuple: the numeric parts, then a pre-release suffix if there is one
        (``(0, 1, 0)``, ``(0, 2, 0, 'rc1')``).
    """
    info = []
    for part in version_str.split('.'):
        lead = len(part) - len(part.lstrip('0123456789'))
        if lead:
            info.append(int(part[:lead]))
        if part[lead:]:
            info.append(part[lead:])
    return tuple(info)


version_info = parse_version_info(__version__)
