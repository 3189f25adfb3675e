"""Starts N local processes of a binary as one multi-controller JAX run (CPU by default).

    python -m launch.local --num_processes=2 --devices_per_process=2 -- \
        python -m experiments.train --config=experiments/configs/digits_mlp.py:smoke \
        --workdir=/tmp/mp

Each process gets TRADEOFFS_COORDINATOR / TRADEOFFS_NUM_PROCESSES / TRADEOFFS_PROCESS_ID
(read by `tradeoffs.train.distributed.maybe_initialize`) and, on CPU,
`--xla_force_host_platform_device_count`. Output of process i goes to stdout prefixed
with `[i]`; the launcher exits non-zero if any process fails, and stops the others.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(process_id: int, num_processes: int, devices_per_process: int, port: int,
                base: dict[str, str] | None = None) -> dict[str, str]:
  env = dict(os.environ if base is None else base)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env.update({
      "TRADEOFFS_COORDINATOR": f"127.0.0.1:{port}",
      "TRADEOFFS_NUM_PROCESSES": str(num_processes),
      "TRADEOFFS_PROCESS_ID": str(process_id),
      "JAX_PLATFORMS": env.get("JAX_PLATFORMS") or "cpu",
      "XLA_FLAGS": " ".join(flags + [f"--xla_force_host_platform_device_count="
                                     f"{devices_per_process}"]),
  })
  return env


def launch(command: list[str], num_processes: int, devices_per_process: int,
           timeout: float | None = None, stream=sys.stdout) -> int:
  """Runs `command` as `num_processes` cooperating processes; returns the worst exit code."""
  if num_processes < 1 or devices_per_process < 1:
    raise ValueError(f"--num_processes={num_processes} and --devices_per_process="
                     f"{devices_per_process} must both be >= 1")
  if not command:
    raise ValueError("no command given after '--'")
  port = free_port()
  procs = []
  for pid in range(num_processes):
    procs.append(subprocess.Popen(command, env=process_env(pid, num_processes,
                                                           devices_per_process, port),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))

  def pump(i, proc):
    for line in proc.stdout:
      stream.write(f"[{i}] {line}")
      stream.flush()

  threads = [threading.Thread(target=pump, args=(i, p), daemon=True) for i, p in
             enumerate(procs)]
  for t in threads:
    t.start()
  deadline = None if timeout is None else time.time() + timeout
  codes = [None] * num_processes
  while any(c is None for c in codes):
    for i, p in enumerate(procs):
      if codes[i] is None:
        codes[i] = p.poll()
    failed = any(c not in (None, 0) for c in codes)
    expired = deadline is not None and time.time() > deadline
    if failed or expired:
      for p in procs:
        if p.poll() is None:
          p.terminate()
      for i, p in enumerate(procs):
        codes[i] = p.wait()
      if expired and not failed:
        codes = [c if c else 124 for c in codes]
      break
    time.sleep(0.1)
  for t in threads:
    t.join(timeout=5)
  return max(abs(c) for c in codes)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  command = []
  if "--" in argv:
    split = argv.index("--")
    argv, command = argv[:split], argv[split + 1:]
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=2)
  parser.add_argument("--timeout", type=float, default=None)
  args = parser.parse_args(argv)
  return launch(command, args.num_processes, args.devices_per_process, args.timeout)


if __name__ == "__main__":
  sys.exit(main())
