"""The allocator settings of the processes tlslog owns."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tlslog import memory


class FakePool:
    def __init__(self, backend_name: str):
        self.backend_name = backend_name
        self.released = 0

    def release_unused(self) -> None:
        self.released += 1


@pytest.mark.parametrize(("backend", "released"), [("system", 0), ("mimalloc", 1), ("jemalloc", 1)])
def test_scratch_is_kept_for_the_next_batch_only_by_the_system_allocator(monkeypatch, backend, released):
    pool = FakePool(backend)
    monkeypatch.setattr(pa, "default_memory_pool", lambda: pool)
    memory.release_scratch()
    assert pool.released == released
    memory.release()
    assert pool.released == released + 1


def test_own_process_uses_the_system_allocator_and_a_library_caller_keeps_its_own():
    code = (
        "import pyarrow as pa, tlslog.memory as m; before = pa.default_memory_pool().backend_name;"
        "m.own_process(); print(before, pa.default_memory_pool().backend_name)"
    )
    env = {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["mimalloc", "system"]


def test_the_command_line_owns_its_process(monkeypatch):
    from typer.testing import CliRunner

    from tlslog.cli import app

    called = []
    monkeypatch.setattr(memory, "own_process", lambda: called.append(True))
    result = CliRunner().invoke(
        app, ["summary", "--no-cache", str(Path(__file__).parents[1] / "sample_logs" / "maillog")]
    )
    assert result.exit_code == 0, result.output
    assert called == [True]


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_own_process_tells_glibc_to_keep_freed_memory_in_one_arena(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(pa, "set_memory_pool", lambda pool: None)
    memory.own_process()
    # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_ARENA_MAX of <malloc.h>
    assert sorted(calls) == [(-8, 1), (-3, memory.MMAP_THRESHOLD), (-1, memory.TRIM_THRESHOLD)]
