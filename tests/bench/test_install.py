"""The set-up bench (bench.install): which README steps it times, how it reads pip's report,
and its section. The timed run itself is a bench (`python -m bench.install`), not a test."""

from __future__ import annotations

from bench import install
from bench.machine import REPO


def test_it_times_each_readme_command_up_to_its_last_pip_install() -> None:
    commands = install.readme_commands((REPO / "README.md").read_text())
    quick, tests = (install.install_part(commands[k]) for k in install.COMMANDS)
    assert quick[0].startswith("python3.11 -m venv") and quick[-1].startswith("pip install")
    assert not any("lora-hpo run" in s for s in quick)
    assert tests[-1].startswith("pip install") and not any("pytest" in s for s in tests)


def test_the_script_reports_every_pip_install_and_marks_every_step() -> None:
    text = install.script(["python3.11 -m venv .venv", "pip install x"], REPO / "r")
    assert f"pip install x --report {REPO / 'r' / '1.json'}" in text
    assert text.count(install.MARK) == 3  # the start and after each step


def test_a_source_archive_counts_as_a_build_and_the_editable_project_does_not() -> None:
    report = {
        "install": [
            {"metadata": {"name": "torch"}, "download_info": {"url": "file:///w/torch.whl"}},
            {"metadata": {"name": "llama-cpp-python"},
             "download_info": {"url": "https://x/llama_cpp_python-0.3.tar.gz"}},
            {"metadata": {"name": "lora-hpo"},
             "download_info": {"url": "file:///src", "dir_info": {"editable": True}}},
        ]
    }  # fmt: skip
    assert install.source_builds(report) == [
        "llama-cpp-python (https://x/llama_cpp_python-0.3.tar.gz)"
    ]


def test_the_section_gives_each_command_beside_its_aim() -> None:
    result = {
        "date": "2026-12-03",
        "git": {"commit": "abc1234", "dirty": False},
        "machine": {"nproc": 2, "cpu_model": "AMD EPYC"},
        "load_before": [0.1, 0.1, 0.1],
        "commands": {
            "Quickstart": {"returncode": 0, "total_s": 150.0, "step_s": [3.0, 60.0, 87.0],
                           "installed": 120, "source_builds": []},
            "Tests": {"returncode": 0, "total_s": 250.0, "step_s": [3.0, 60.0, 180.0, 7.0],
                      "installed": 200, "source_builds": ["x (x.tar.gz)"]},
        },
    }  # fmt: skip
    text = install.render(result)
    assert "| quickstart | **150** | ≤ 180 s, no source build: met | 3, 60, 87 |" in text
    assert "| tests | **250** | no source build: missed |" in text and "x (x.tar.gz)" in text
