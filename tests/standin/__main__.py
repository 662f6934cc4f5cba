"""python -m tests.standin build | run [--budget NAME] -- CMD ARGS...  (see tests/standin/__init__.py)."""
from __future__ import annotations

import argparse
import subprocess
import sys

from . import build, fresh_cache, serve, standin_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin", description=__doc__)
    parser.add_argument("action", choices=["build", "run"])
    parser.add_argument("--budget", default="smoke",
                        help="SAELAB_BUDGET for the command ('smoke' for CI; '' leaves it unset: the device's own)")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]  # after --: the command to run online
    root = build()
    if args.action == "build":
        print(root)
        return 0
    if not command:
        parser.error("run needs a command after --, e.g. -- python -m pytest --nbval-lax notebooks")
    with serve(root) as url:
        env = standin_env(root, url, fresh_cache(), args.budget or None)
        shown = {k: env[k] for k in ("HF_HOME", "HF_HUB_OFFLINE", "SAELAB_OPENAI_SAE_URL", "SAELAB_CACHE",
                                     "SAELAB_TEXTS") } | {"SAELAB_BUDGET": env.get("SAELAB_BUDGET", "(unset)")}
        print("online against the stand-in, SAELAB_OFFLINE unset,", " ".join(f"{k}={v}" for k, v in shown.items()),
              flush=True)
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
