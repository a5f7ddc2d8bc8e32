"""``write_text`` on a local path: the file is replaced whole (write, flush, fsync, rename,
fsync of the directory, seen in the system calls), and a write that a full disk refuses raises
ENOSPC, keeps the old file and leaves no temporary file behind (a real full tmpfs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_hpo.files.small_files import read_text, write_text
from tests.full_disk import CAN_MOUNT, REPO, WHY_NOT, run_unshared


def test_a_file_is_replaced_whole_and_no_temporary_file_stays(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    write_text(target, "one")
    write_text(target, "two é")
    assert read_text(target) == "two é"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_data_and_the_rename_are_fsynced_in_order(tmp_path: Path) -> None:
    target, log = tmp_path / "state.json", tmp_path / "strace.log"
    code = "import sys; from lora_hpo.files.small_files import write_text as w; w(sys.argv[1], 'x')"
    calls = "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2,close"
    cmd = ["strace", "-f", "-e", calls, "-o", str(log), sys.executable, "-c", code, str(target)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=60)
    text = log.read_text()
    tmp = re.search(r'openat\(AT_FDCWD, "([^"]*\.state\.json\.\d+\.tmp)".* = (\d+)', text)
    assert tmp is not None, text[-2000:]
    fd, folder = tmp.group(2), re.escape(str(tmp_path))
    steps = [  # in this order, each after the one before
        rf'write\({fd}, "x"',
        rf"fsync\({fd}\)",
        rf"close\({fd}\)",
        rf"rename\w*\(.*{re.escape(tmp.group(1))}.*state\.json",
        rf'openat\(AT_FDCWD, "{folder}", O_RDONLY.* = (\d+)',
    ]
    at, dir_fd = tmp.end(), ""
    for step in steps:
        found = re.compile(step).search(text, at)
        assert found is not None, f"not seen after the step before: {step}"
        at, dir_fd = found.end(), (found.groups() or ("",))[0]
    assert re.compile(rf"fsync\({dir_fd}\)\s+= 0").search(text, at), "no fsync of the folder"


FULL = """
import errno, json, sys
from pathlib import Path
from tests.full_disk import fill, mount_small_tmpfs
from lora_hpo.files.small_files import write_text
disk = Path(sys.argv[1])
mount_small_tmpfs(disk)
target, seen = disk / "study" / "state.json", {}
write_text(target, "old")
filler = fill(disk)
try:
    write_text(target, "new " * 2000)
except OSError as exc:
    seen["error"] = errno.errorcode[exc.errno]
seen["full"] = [target.read_text(), sorted(p.name for p in target.parent.iterdir())]
filler.unlink()
write_text(target, "new")
seen["freed"] = [target.read_text(), sorted(p.name for p in target.parent.iterdir())]
print(json.dumps(seen))
"""


@pytest.mark.skipif(not CAN_MOUNT, reason=WHY_NOT)
def test_a_full_disk_raises_keeps_the_old_file_and_leaves_no_tmp(tmp_path: Path) -> None:
    done = run_unshared(FULL, str(tmp_path / "disk"))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["error"] == "ENOSPC"
    assert seen["full"] == ["old", ["state.json"]]  # no .state.json.<pid>.tmp
    assert seen["freed"] == ["new", ["state.json"]]
    assert not any((tmp_path / "disk").iterdir())  # the tmpfs was private to the child
