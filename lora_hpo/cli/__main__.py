"""``python -m lora_hpo.cli``: the same as the ``lora-hpo`` command."""

import sys

from lora_hpo.cli.main import main

sys.exit(main())
