"""`python -m questline ...` (and `torchrun --nproc_per_node N -m questline train ...`): the CLI."""

import sys

from questline.cli import main

sys.exit(main())
