"""The verifiers plugin `questline-verifiers`: verifiers 0.4 imports a taskset/env/harness
plugin by a top-level module name, so this re-exports `questline.integrations.verifiers`."""

from questline.integrations.verifiers import *  # noqa: F403
from questline.integrations.verifiers import __all__  # noqa: F401
