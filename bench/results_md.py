"""bench/RESULTS.md as a whole: each bench writes its own section as Markdown beside its JSON
(``p1.md``, ``overhead.md``, ``search_quality.md``, ...), and ``compose`` joins the sections
that exist, in a fixed order. It imports no bench, so every bench can call it.

    python -m bench.results_md [FOLDER] [RESULTS_MD]   # join again, without re-running
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
SECTIONS = (
    "p1.md",
    "threads.md",
    "workers.md",
    "peer.md",
    "peer-len32.md",
    "install.md",
    "overhead.md",
    "search_quality.md",
    "tabular.md",
    "check.md",
    "packed.md",
)
# where a section is looked for after the given folder: the committed results
COMMITTED = (BENCH / "results", BENCH / "tabular" / "results")


NO_OVERHEAD = """# lora-hpo benchmark results

Every section below was produced from a committed tree, with its raw JSON beside it.

The full overhead bench (`python -m bench.overhead --repeats 3`: time to target, ASHA's saving
and trial start-up against the peer) and the real-study search-quality bench
(`python -m bench.search_quality`) have not been run on the current code; their last figures
(2026-11-24, from a working tree before the restructure) are in git history:
`git show a47337f:bench/RESULTS.md`. The fresh-clone set-up, P1 (with the quickstart command's
wall and accuracy) and the peer ratio at sequence lengths 128 and 32 are measured below in one
run of a committed tree (`bash bench/issue15.sh`); the threads bench, the prestarted-workers
bench and the simulator's real-study check each ran on their own, at the commit its section
names.

Commit ids older than 4a51b73 that a section cites (ec9bd0b, a0298f4, f425970, c7ef9db, ...)
are of sessions whose commits did not reach main; their tree landed as 4a51b73, unchanged.
"""


def write_section(folder: Path, stem: str, data: dict[str, Any], md: str) -> None:
    """A bench's raw figures and its section: ``<folder>/<stem>.json`` and ``<stem>.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str))
    (folder / f"{stem}.md").write_text(md)
    print(md)
    print(f"wrote {folder / stem}.json and {folder / stem}.md")


def compose(folder: Path, dst: Path) -> Path:
    """Join the section files into ``dst``: each from ``folder`` (a fresh run), else from the
    committed results (``bench/results/``, ``bench/tabular/results/``)."""
    parts = []
    for name in SECTIONS:
        found = [d / name for d in (folder, *COMMITTED) if (d / name).is_file()]
        if found:
            parts.append(found[0].read_text())
    if not (folder / "overhead.md").is_file():
        parts.insert(0, NO_OVERHEAD)
    dst.write_text("\n".join(p.rstrip("\n") + "\n" for p in parts))
    print(f"wrote {dst}")
    return dst


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH / "out"
    compose(folder, Path(sys.argv[2]) if len(sys.argv) > 2 else BENCH / "RESULTS.md")


if __name__ == "__main__":
    main()
