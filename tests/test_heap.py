"""The command line's own process keeps freed memory for the next block; nothing else changes."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys

import pytest

from pamlib import _heap, cli

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
ASK = "from pamlib._heap import keep_freed_memory; print(keep_freed_memory())"


def asked(**environment: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", ASK],
        check=False,
        env={**env, **environment},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_glibc_is_asked_to_keep_freed_memory() -> None:
    assert asked() == "True"


@pytest.mark.parametrize(
    "environment",
    [
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"MALLOC_MMAP_THRESHOLD_": "131072"},
        {"MALLOC_TOP_PAD_": "0"},
        {"MALLOC_ARENA_MAX": "2"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    ],
)
def test_an_environment_that_tunes_the_allocator_is_left_alone(
    environment: dict[str, str],
) -> None:
    assert asked(**environment) == "False"


def test_only_the_command_lines_own_process_changes_its_allocator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``main`` called by a program (here, a test) leaves that program's allocator alone; of
    the command line's own, only ``pamlib score`` (measured) changes it."""
    calls: list[bool] = []

    def keep() -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(_heap, "keep_freed_memory", keep)
    cli._settle(keep_freed_memory=True)
    assert calls == []
    monkeypatch.setattr(cli, "_own_process", True)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # this process's collector as it was
    monkeypatch.setattr(gc, "enable", lambda: None)
    cli._settle()  # a command that does not run over blocks
    assert calls == []
    cli._settle(keep_freed_memory=True)  # pamlib score
    assert calls == [True]
