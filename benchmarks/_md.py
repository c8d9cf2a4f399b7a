"""Write one section of BENCHMARKS.md (between markers), with the command and the machine."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "BENCHMARKS.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, {date.today()}"


def update_section(name: str, body: str) -> None:
    cmd = "python " + shlex.join([str(Path(sys.argv[0]).relative_to(ROOT) if Path(sys.argv[0]).is_absolute() else sys.argv[0]), *sys.argv[1:]])
    block = f"<!-- {name}:start -->\n_Command:_ `{cmd}`  \n_Machine:_ {machine()}\n\n{body.strip()}\n<!-- {name}:end -->"
    text = BENCH.read_text() if BENCH.exists() else "# Benchmarks\n"
    pat = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
    BENCH.write_text(text)


def mean_pm(values, fmt: str = "{:.3f}") -> str:
    import numpy as np

    v = np.asarray(values, dtype=float)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{fmt.format(v.mean())} ± {fmt.format(sd)}"
