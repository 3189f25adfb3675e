"""experiments.benchmarks.gpu on a machine without a GPU: one line, exit 0."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_without_a_gpu_it_explains_itself_in_one_line_and_exits_0():
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  done = subprocess.run([sys.executable, "-m", "experiments.benchmarks.gpu"], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  lines = [line for line in done.stdout.splitlines() if line.strip()]
  assert len(lines) == 1, done.stdout
  assert "no GPU visible to JAX (backend cpu)" in lines[0]
  assert "nothing to do here" in lines[0]
