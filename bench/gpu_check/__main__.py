"""``python -m bench.gpu_check``: see ``run.py``."""

import sys

from bench.gpu_check.run import main

sys.exit(main())
