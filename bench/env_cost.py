"""What the locked environment costs, measured for make bench's dated run.

    python bench/env_cost.py VENV LOCK OUT_JSON

writes ``{"lock", "venv_mb", "import_torch_s", "torch"}``: the virtual environment's size on
disk (MB of allocated blocks, as ``du`` counts them) and the median of 5 fresh processes'
``import torch`` (seconds of wall time, interpreter start-up excluded: each process times the
import itself). ``initsuite.results.figures`` reads it into figures.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from initsuite.results.figures import write

TIMED_IMPORT = (
    "import time; t = time.perf_counter(); import torch; "
    "print(time.perf_counter() - t, torch.__version__)"
)


def disk_mb(root: Path) -> float:
    """MB of blocks allocated under ``root`` (links not followed, each inode once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total / 2**20


def import_seconds(python: str, runs: int = 5) -> tuple[float, str]:
    """Median seconds of ``import torch`` over ``runs`` fresh processes, and torch's version."""
    times, version = [], ""
    for _ in range(runs):
        out = subprocess.run([python, "-c", TIMED_IMPORT], check=True, capture_output=True,
                             text=True).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        version = out[1]
    return statistics.median(times), version


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    venv, lock, out = Path(argv[0]), argv[1], argv[2]
    seconds, version = import_seconds(str(venv / "bin" / "python"))
    record = {"lock": lock, "venv_mb": round(disk_mb(venv)), "import_torch_s": round(seconds, 3),
              "torch": version}  # fmt: skip
    write(record, out)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
