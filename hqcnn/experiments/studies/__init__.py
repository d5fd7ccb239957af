"""The studies, one module each; importing this package registers every one of them.

To add a study, add a module here with a `Study` subclass decorated with `@register`
(see `hqcnn.experiments.registry` and, for a small example, `paired.py`).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from hqcnn.experiments.registry import STUDIES  # noqa: E402

for _name, _study in sorted(STUDIES.items(), key=lambda item: item[1].order):  # menus follow `order`
    STUDIES[_name] = STUDIES.pop(_name)
