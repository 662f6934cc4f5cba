"""Print whether the environment's CPU code path changes float32 results (the second claim run relies on it).

    python -m tests.claims.codepath ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2

runs the same float32 layers natively and under the given settings (in fresh processes) and prints both digests.
"""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import hashlib, torch
torch.manual_seed(0)
lin = torch.nn.Linear(160, 1280)
x = torch.randn(257, 160)
with torch.no_grad():
    y = torch.relu(lin(x)) @ torch.randn(1280, 160)
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha1(y.numpy().tobytes()).hexdigest()[:12], f"{y.sum().item():.9g}")
"""


def probe(env: dict[str, str]) -> str:
    """Capability, digest and sum of a fixed float32 computation under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def main(argv: list[str]) -> int:
    settings = dict(a.split("=", 1) for a in argv)
    native, other = probe({}), probe(settings)
    print(f"float32 native:      {native}")
    print(f"float32 with {' '.join(argv)}: {other}")
    if native.split()[1:] != other.split()[1:]:
        print("=> the second code path changes float32 results on this machine")
    else:
        print("=> WARNING: these settings do not change float32 results on this machine; the second claim run "
              "still differs by seed offset and thread count")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
