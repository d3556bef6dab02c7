"""``inspect_kit.featurevis``: another name of :mod:`inspect_kit.analysis.featurevis`.

``import inspect_kit.featurevis``, ``from inspect_kit import featurevis`` and
``inspect_kit.analysis.featurevis`` are one module object.
"""

import sys

from inspect_kit.analysis import featurevis as _featurevis

sys.modules[__name__] = _featurevis
