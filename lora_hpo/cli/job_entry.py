"""The job-side entry of ``lora-hpo submit``: ``python -m lora_hpo.cli.job_entry [ARGS]`` on the
cluster. Decodes the spec the job carries (``lora_hpo.cluster.job_payload``) to a temporary file
and runs ``lora-hpo run FILE ARGS`` on it in this process, as a job's driver (the files the
spec names are the cluster's; the job's runtime_env carries the workers' settings)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from lora_hpo.cli.main import main as cli_main
from lora_hpo.cluster.job_payload import decode_spec
from lora_hpo.files.scratch_folders import Scratch
from lora_hpo.spec.spec_errors import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    try:
        text = decode_spec()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with Scratch("job") as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(text, encoding="utf-8")
        rest = list(sys.argv[1:] if argv is None else argv)
        return cli_main(["run", str(path), *rest], on_cluster=True)


if __name__ == "__main__":
    sys.exit(main())
