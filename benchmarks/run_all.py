"""Run every benchmark script in this folder and print what each reports (`make bench`)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    failed = []
    summary = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
        seconds = time.perf_counter() - start
        summary.append((script.name, "ok" if result.returncode == 0 else f"exit {result.returncode}", seconds))
        if result.returncode:
            failed.append(script.name)
    print(f"\n{'benchmark':<32} {'status':<8} {'seconds':>8}")
    for name, status, seconds in summary:
        print(f"{name:<32} {status:<8} {seconds:>8.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
