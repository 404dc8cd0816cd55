"""`python -m archlab ...`, which is what torchrun runs: `torchrun --nproc-per-node 2 -m archlab train ...`."""

import sys

from .cli import main

sys.exit(main())
