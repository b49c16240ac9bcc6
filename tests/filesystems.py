"""Real faulty file systems for the tests: a tiny tmpfs that fills up, a read-only one.

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the test is skipped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(mount_point: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted at mount_point for the with-block, unmounted after (lazily, so a file
    a failed test left open cannot keep it mounted)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@contextmanager
def small_disk(mount_point: Path, size: str = "256k") -> Iterator[Path]:
    """A real file system of `size` bytes: writing more gives ENOSPC."""
    with tmpfs(mount_point, f"size={size}", "mode=0777") as path:
        yield path


@contextmanager
def read_only_disk(mount_point: Path) -> Iterator[Path]:
    """A real read-only file system: every write gives EROFS."""
    with tmpfs(mount_point, "ro", "size=64k") as path:
        yield path


def fill_up(folder: Path) -> None:
    """Write into folder until the file system is full."""
    with (folder / "filler.bin").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass
