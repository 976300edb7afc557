"""Sub-modules are imported automatically so their components register."""
from mmdistill.utils.autoimport import import_submodules

import_submodules(__name__, __path__)
