"""The job-side entry point of ``lora-hpo submit``: ``python -m lora_hpo.cluster_entry [ARGS]``.

Decodes the spec embedded in the job (``LORA_HPO_SPEC_B64``) to a temporary file and runs
``lora-hpo run FILE ARGS`` on it, in this process (torch is imported before Ray starts).
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lora_hpo.cluster import SPEC_ENV


def main(argv: Sequence[str] | None = None) -> int:
    blob = os.environ.get(SPEC_ENV, "")
    try:
        text = base64.urlsafe_b64decode(blob.encode()).decode() if blob else ""
    except (binascii.Error, UnicodeDecodeError) as exc:
        print(f"error: {SPEC_ENV}: not base64 YAML ({exc})", file=sys.stderr)
        return 2
    if not text:
        print(f"error: {SPEC_ENV} is empty; submit studies with `lora-hpo submit`", file=sys.stderr)
        return 2
    from lora_hpo.cli import main as cli_main

    with tempfile.TemporaryDirectory(prefix="lora-hpo-job-") as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(text, encoding="utf-8")
        rest = list(sys.argv[1:] if argv is None else argv)
        return cli_main(["run", str(path), *rest])


if __name__ == "__main__":
    sys.exit(main())
