"""Scratch folders: removed at the end of their block; one whose process was killed (SIGKILL)
is removed by the next folder of its kind, while a live process's folder and other kinds'
stay."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from lora_hpo.files.scratch_folders import OWNER, Scratch, sweep

HOLD = (
    "import sys, time\n"
    "from lora_hpo.files.scratch_folders import Scratch\n"
    "s = Scratch(sys.argv[1], root=sys.argv[2])\n"
    "print(s.name, flush=True)\n"
    "time.sleep(120)\n"
)


def _holder(kind: str, root: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that makes a ``kind`` folder under ``root`` and keeps it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, kind, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_folder_goes_at_the_end_of_its_block_with_its_lock_beside_it(tmp_path: Path) -> None:
    with Scratch("trial", root=str(tmp_path)) as name:
        folder = Path(name)
        assert folder.name.startswith("lora-hpo-trial-") and Path(name + OWNER).is_file()
        assert list(folder.iterdir()) == []  # only what its user puts there (MLflow uploads)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_owners_folder_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    killed, dead = _holder("trial", tmp_path)
    alive, live = _holder("trial", tmp_path)
    other_kind = Scratch("pack", root=str(tmp_path))
    try:
        (dead / "checkpoint-10").mkdir()  # what a killed trial leaves
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert dead.is_dir()  # nothing removes it by itself
        mine = Scratch("trial", root=str(tmp_path))  # the next trial's folder
        assert not dead.exists()
        assert live.is_dir() and Path(other_kind.name).is_dir() and Path(mine.name).is_dir()
        assert sweep("trial", str(tmp_path)) == 0  # its own live folder stays too
        mine.cleanup()
    finally:
        alive.kill()
        alive.wait(timeout=30)
        other_kind.cleanup()
    assert sweep("trial", str(tmp_path)) == 1 and not live.exists()
    assert list(tmp_path.iterdir()) == []  # lock files too


def test_a_folder_without_its_lock_yet_is_left_alone(tmp_path: Path) -> None:
    making = tmp_path / "lora-hpo-trial-abc"  # between mkdtemp and the lock's rename
    making.mkdir()
    assert sweep("trial", str(tmp_path)) == 0 and making.is_dir()


def _as_user(uid: int, root: Path, keep: bool) -> tuple[int, str]:
    """In a forked child running as ``uid``: make a ``trial`` folder under ``root``, and end
    as a killed process would (``keep``: no clean-up runs) or normally. (exit status, name
    or error)"""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: another user
        status = 1
        try:
            os.close(read)
            os.setgid(uid)
            os.setuid(uid)
            scratch = Scratch("trial", root=str(root))
            os.write(write, scratch.name.encode())
            if not keep:
                scratch.cleanup()
            status = 0
        except BaseException as exc:
            os.write(write, repr(exc).encode())
        finally:
            os._exit(status)  # no finalizers: a kept folder stays as after SIGKILL
    os.close(write)
    with os.fdopen(read) as said:
        text = said.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text


def test_another_users_dead_folder_in_a_shared_temp_folder_is_left_to_them() -> None:
    """A temp folder shared by users (sticky, like /tmp): the first user's killed study left a
    folder; the second user's study makes its own and does not crash on the first's."""
    shared = Path(tempfile.mkdtemp(prefix="shared-tmp-"))
    shared.chmod(0o1777)
    try:
        status, left = _as_user(12345, shared, keep=True)
        assert status == 0, left
        assert Path(left).is_dir() and Path(left + OWNER).is_file()
        status, said = _as_user(12346, shared, keep=False)
        assert status == 0, said  # before: PermissionError removing the first user's lock
        assert sorted(shared.iterdir()) == sorted([Path(left), Path(left + OWNER)])
    finally:
        shutil.rmtree(shared)
