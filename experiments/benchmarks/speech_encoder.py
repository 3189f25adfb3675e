"""Latency per utterance of the speech encoder at squeeze s = 1, 2, 4 for both extractors,
as ratios to the original extractor at s = 1 (prints; asserts nothing).

    python -m experiments.benchmarks.speech_encoder --rounds 7 --encoder 2x64

Setup: `speech_ctc` as `experiments/configs/squeezed_speech.py` builds it (original c = 32,
compact c = 4; FFN 4·d, 4 heads), untrained weights (latency does not depend on them), one
random utterance of 15,440 samples (1.93 s at 8 kHz, 48 extractor frames), batch 1 (and
`--batch`), eval mode. Each configuration's jitted forward pass is compiled and called
`--warmup` times first; then every round times `--calls` calls of each configuration, the
configurations in a fresh shuffled order each round (interleaved, so a change in the
machine's load hits all of them alike). Reported: the median over rounds of the per-call
time with its p10-p90 spread, and the latency ratio to the original at s = 1 computed
within each round (median and p10-p90 over rounds). FLOPs are XLA's cost analysis of the
same compiled program.

Measured 2026-12-02 12:13 UTC (`flock /tmp/bench.lock`, normal priority, 2 CPU cores at load
0.7-1.2), `--rounds 9 --calls 10 --encoder 2x64 --compare_level 1`, 37.3 s wall, 50.9 s
CPU; ms per utterance, latency ratio to original s=1 per round [p10-p90], FLOPs ratio:
    original s=1 0.87 ms 1.00×             FLOPs 1.00
    original s=2 0.74 ms 0.84× [0.80-0.92] FLOPs 0.83
    original s=4 0.69 ms 0.79× [0.72-0.85] FLOPs 0.75
    compact  s=1 0.96 ms 1.09× [1.01-1.14] FLOPs 0.45
    compact  s=2 0.79 ms 0.91× [0.80-1.00] FLOPs 0.28
    compact  s=4 0.77 ms 0.86× [0.76-0.94] FLOPs 0.20
The squeeze saves latency (0.84× at s = 2, 0.79× at s = 4 with the original extractor);
the compact extractor's FLOPs saving (0.45×) buys none by itself (1.09× at s = 1, slower)
and with the squeeze less than the squeeze alone. Compiled at backend level 1 every
configuration ran 0.95-1.04× its default-level program (p10-p90 ranges span 1).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs import models
from tradeoffs.data import spoken_digits
from tradeoffs.efficiency import cost


def build(extractor: str, squeeze: int, encoder: str, channels: dict[str, int], batch: int,
          level: int | None = None):
  """(jitted forward, variables, input); `level` compiles it at that XLA:CPU backend
  optimisation level (per program, `compiler_options`), None at XLA's default."""
  layers, d = (int(v) for v in encoder.split("x"))
  net = models.get("speech_ctc", num_classes=spoken_digits.NUM_CLASSES, extractor=extractor,
                   conv_channels=channels[extractor], squeeze=squeeze, num_layers=layers,
                   d_model=d, ffn_dim=4 * d, num_heads=4, pos_conv_groups=8)
  x = jax.random.normal(jax.random.key(1), (batch, spoken_digits.NUM_SAMPLES)) * 0.1
  variables = net.init(jax.random.key(0), x[:1])
  options = None if level is None else {"xla_backend_optimization_level": level}
  forward = jax.jit(lambda v, w: net.apply(v, w, train=False), compiler_options=options)
  return forward, variables, x


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--calls", type=int, default=10)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--encoder", default="2x64", help="<layers>x<d_model>")
  parser.add_argument("--original_channels", type=int, default=32)
  parser.add_argument("--compact_channels", type=int, default=4)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--compare_level", type=int, default=None,
                      help="also time every configuration compiled at this XLA:CPU backend "
                           "optimisation level, interleaved; prints its latency ratio to "
                           "the default-level program per round")
  args = parser.parse_args()
  if args.compare_level is not None and not 0 <= args.compare_level <= 3:
    parser.error(f"--compare_level={args.compare_level}: expected an integer in 0..3")
  for name in ("rounds", "calls", "batch", "warmup", "original_channels", "compact_channels"):
    low = 0 if name == "warmup" else 1
    if getattr(args, name) < low:
      parser.error(f"--{name}={getattr(args, name)}: expected an integer >= {low}")
  channels = {"original": args.original_channels, "compact": args.compact_channels}
  configs = {(e, s): build(e, s, args.encoder, channels, args.batch)
             for e in ("original", "compact") for s in (1, 2, 4)}
  if args.compare_level is not None:  # Same weights and input, another compiled program.
    configs.update({(e, s, args.compare_level): (build(e, s, args.encoder, channels,
                                                        args.batch, args.compare_level)[0],
                                                  *configs[(e, s)][1:])
                    for e, s in list(configs)})
  flops = {}
  for key, (forward, variables, x) in configs.items():
    for _ in range(max(args.warmup, 1)):  # compile + warm-up
      jax.block_until_ready(forward(variables, x))
    if len(key) == 2:  # A compare-level copy is the same computation (same FLOPs).
      flops[key] = cost.compiled_cost(forward, variables, x)["flops"]
  times = {key: [] for key in configs}
  rng = np.random.default_rng(0)
  for _ in range(args.rounds):
    for index in rng.permutation(len(configs)):
      key = list(configs)[index]
      forward, variables, x = configs[key]
      start = time.perf_counter()
      for _ in range(args.calls):
        out = forward(variables, x)
      jax.block_until_ready(out)
      times[key].append((time.perf_counter() - start) / args.calls)
  base = ("original", 1)
  median = {k: float(np.median(v)) for k, v in times.items()}
  print(f"speech encoder {args.encoder}, batch {args.batch}, {jax.default_backend()}, "
        f"{args.rounds} rounds x {args.calls} calls after {max(args.warmup, 1)} warm-up; "
        "ratios to original s=1 (per round)")
  print(f"{'extractor':<10}{'s':>3}{'ms/utterance':>14}{'p10-p90 ms':>16}{'latency x':>11}"
        f"{'p10-p90 x':>13}{'FLOPs x':>9}")
  for key in [k for k in configs if len(k) == 2]:
    p10, p90 = np.percentile(times[key], [10, 90]) * 1e3 / args.batch
    ratios = np.asarray(times[key]) / np.asarray(times[base])
    r10, r50, r90 = np.percentile(ratios, [10, 50, 90])
    print(f"{key[0]:<10}{key[1]:>3}{median[key] * 1e3 / args.batch:>14.3f}"
          f"{p10:>8.3f}-{p90:<7.3f}{r50:>11.2f}{r10:>7.2f}-{r90:<5.2f}"
          f"{flops[key] / flops[base]:>9.2f}")
  if args.compare_level is not None:
    print(f"compiled at --xla_backend_optimization_level={args.compare_level}: latency ratio "
          "to the default-level program per round, median [p10-p90]")
    for key in [k for k in configs if len(k) == 3]:
      ratios = np.asarray(times[key]) / np.asarray(times[key[:2]])
      r10, r50, r90 = np.percentile(ratios, [10, 50, 90])
      print(f"{key[0]:<10}{key[1]:>3}{r50:>11.2f} [{r10:.2f}-{r90:.2f}]")


if __name__ == "__main__":
  main()
