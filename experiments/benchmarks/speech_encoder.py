"""Latency per utterance of the speech encoder at squeeze s = 1, 2, 4 for both extractors,
as ratios to the original extractor at s = 1 (prints; asserts nothing).

    python -m experiments.benchmarks.speech_encoder --rounds 7 --encoder 2x64

Setup: `speech_ctc` as `experiments/configs/squeezed_speech.py` builds it (original c = 32,
compact c = 8; FFN 4·d, 4 heads), untrained weights (latency does not depend on them), one
random utterance of 15,440 samples (1.93 s at 8 kHz, 48 extractor frames), batch 1 (and
`--batch`), eval mode. Each configuration's jitted forward pass is compiled and warmed up
first; then every round times `--calls` calls of each configuration in a shuffled order;
the number is the median over rounds of the per-call time. FLOPs are XLA's cost analysis
of the same compiled program.
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


def build(extractor: str, squeeze: int, encoder: str, channels: dict[str, int], batch: int):
  layers, d = (int(v) for v in encoder.split("x"))
  net = models.get("speech_ctc", num_classes=spoken_digits.NUM_CLASSES, extractor=extractor,
                   conv_channels=channels[extractor], squeeze=squeeze, num_layers=layers,
                   d_model=d, ffn_dim=4 * d, num_heads=4, pos_conv_groups=8)
  x = jax.random.normal(jax.random.key(1), (batch, spoken_digits.NUM_SAMPLES)) * 0.1
  variables = net.init(jax.random.key(0), x[:1])
  forward = jax.jit(lambda v, w: net.apply(v, w, train=False))
  return forward, variables, x


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--calls", type=int, default=10)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--encoder", default="2x64", help="<layers>x<d_model>")
  parser.add_argument("--original_channels", type=int, default=32)
  parser.add_argument("--compact_channels", type=int, default=8)
  args = parser.parse_args()
  channels = {"original": args.original_channels, "compact": args.compact_channels}
  configs = {(e, s): build(e, s, args.encoder, channels, args.batch)
             for e in ("original", "compact") for s in (1, 2, 4)}
  flops = {}
  for key, (forward, variables, x) in configs.items():
    jax.block_until_ready(forward(variables, x))  # compile + warm-up
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
        f"{args.rounds} rounds x {args.calls} calls; ratios to original s=1")
  print(f"{'extractor':<10}{'s':>3}{'ms/utterance':>14}{'latency x':>11}{'FLOPs x':>9}"
        f"{'p10-p90 ms':>16}")
  for key in configs:
    p10, p90 = np.percentile(times[key], [10, 90]) * 1e3 / args.batch
    print(f"{key[0]:<10}{key[1]:>3}{median[key] * 1e3 / args.batch:>14.3f}"
          f"{median[key] / median[base]:>11.2f}{flops[key] / flops[base]:>9.2f}"
          f"{p10:>8.3f}-{p90:.3f}")


if __name__ == "__main__":
  main()
