"""Throughput harness: tlslog against a bare Python loop on the same generated maillog, in one run.

Usage (from the project root, after `make test` or `make demo` has built .venv):

    .venv/bin/python benchmarks/harness.py                 # 200k and 2M lines
    .venv/bin/python benchmarks/harness.py --lines 200000  # one size
    .venv/bin/python benchmarks/harness.py --repeat 5      # medians of 5 runs (a shared machine is noisy)

For each size it generates a deterministic week (benchmarks/generate.py, kept under benchmarks/out/),
then times three commands in fresh processes:

- baseline: a bare Python loop that reads the lines and tests a substring (the floor any Python reader pays);
- cold:     `tlslog summary FILE` with an empty cache directory;
- cached:   the same command again (the columnar cache answers).

It prints lines/s, the ratio of tlslog's time to the baseline's, the CPU seconds of the whole process
tree (user + system, workers included: steadier than wall time on a shared machine) and the peak
resident memory of the tree (parent and workers, sampled every 20 ms). The memory is sampled in runs of
their own: the sampler costs about 1 ms of CPU a sample, which the timed runs would otherwise share
their two cores with. It is run by hand, never by `make test`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TLSLOG = [sys.executable, "-m", "tlslog"]
BASELINE = (
    "import sys\n"
    "n = 0\n"
    "with open(sys.argv[1], encoding='utf-8', errors='replace') as f:\n"
    "    for line in f:\n"
    "        if 'STARTTLS' in line:\n"
    "            n += 1\n"
    "print(n)\n"
)


def generated_log(lines: int) -> Path:
    """The generated log of about `lines` lines, made once and kept under benchmarks/out/."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"week-{lines}.log"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate.py"),
                "--lines",
                str(lines),
                "--seed",
                "1",
                "--out",
                str(tmp),
            ],
            check=True,
        )
        tmp.rename(path)
    return path


def run(cmd: list[str], sample: bool = False) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and, with ``sample``, peak RSS (bytes, summed over the process tree) of
    one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while sample and proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, peak


def line_count(path: Path) -> int:
    with path.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


# the same work through the library, for when the CLI lacks --cache-dir; "read" stops after read_log
LIBRARY = (
    "import sys\n"
    "from tlslog import frames, report\n"
    "df = frames.read_log(sys.argv[1], cache_dir=sys.argv[2], jobs=int(sys.argv[4]) or None)\n"
    "if sys.argv[3] == 'summary':\n"
    "    print(report.render_summary(report.summary(df), report.Format.table))\n"
)


def median_run(cmd: list[str], repeat: int, before=None) -> tuple[float, float, int]:
    """`run` ``repeat`` times (``before()`` ahead of each), then as often with the memory sampled: the
    median wall and CPU seconds of the first runs, the highest peak of the others."""
    timed, peaks = [], []
    for runs, sample in ((timed, False), (peaks, True)):
        for _ in range(repeat):
            if before is not None:
                before()
            runs.append(run(cmd, sample))
    return (
        statistics.median(r[0] for r in timed),
        statistics.median(r[1] for r in timed),
        max(r[2] for r in peaks),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, action="append", help="log size(s); default 200000 and 2000000")
    parser.add_argument(
        "--library",
        choices=["summary", "read"],
        help="call the library instead of the CLI (read: read_log only)",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="processes for --library (default 0: one per CPU, as the CLI)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each command; the median is shown (a shared machine is noisy)",
    )
    args = parser.parse_args()
    head = ("lines", "run", "seconds", "lines/s", "x baseline", "cpu s", "peak RSS")
    print("{:>9} {:<8} {:>8} {:>11} {:>10} {:>6} {:>9}".format(*head))
    for size in args.lines or [200_000, 2_000_000]:
        log = generated_log(size)
        n = line_count(log)
        base, base_cpu, base_rss = median_run([sys.executable, "-c", BASELINE, str(log)], args.repeat)
        print(
            f"{n:>9} {'baseline':<8} {base:>8.2f} {n / base:>11,.0f} {1:>10.2f} {base_cpu:>6.2f}"
            f" {base_rss / 2**20:>7.0f}MB"
        )
        with tempfile.TemporaryDirectory() as cache:
            if args.library:
                cmd = [sys.executable, "-c", LIBRARY, str(log), cache, args.library, str(args.jobs)]
            else:
                cmd = [*TLSLOG, "summary", str(log), "--quiet", "--cache-dir", cache]

            def empty() -> None:
                shutil.rmtree(cache)
                os.mkdir(cache)

            for label, before in (("cold", empty), ("cached", None)):
                secs, cpu, rss = median_run(cmd, args.repeat, before)
                ratio = secs / base
                print(
                    f"{n:>9} {label:<8} {secs:>8.2f} {n / secs:>11,.0f} {ratio:>10.2f} {cpu:>6.2f}"
                    f" {rss / 2**20:>7.0f}MB"
                )


if __name__ == "__main__":
    main()
