r"""Squeezed speech encoders (SEW, Wu et al. 2021): extractor {original, compact} × squeeze
s × encoder size, trained from scratch with CTC on spoken digit strings; digit error rate on
seen and held-out voices against latency per utterance, FLOPs, parameters and memory.

    python -m experiments.squeezed_speech                        # offline
    python -m experiments.squeezed_speech \
        --config=experiments/configs/squeezed_speech.py:smoke --workdir=/tmp/speech_smoke
    python -m experiments.squeezed_speech --workdir=workdirs/squeezed_speech --report_only

The study is `tradeoffs.studies.squeezed_speech`; flags and errors are `experiments.app`'s.
Before JAX starts, `experiments.app` appends the XLA flags the config asks for
(`study.xla_backend_optimization_level`, the smoke's O0) to XLA_FLAGS, so they apply to this
process's compiles only.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("squeezed_speech", default_config="squeezed_speech.py")
