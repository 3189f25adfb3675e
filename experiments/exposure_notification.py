r"""Noisy exposure notification: precision, recall and false alarms against ε (no training).

    python -m experiments.exposure_notification           # workdirs/exposure_notification
    python -m experiments.exposure_notification \
        --config=experiments/configs/exposure_notification.py:smoke --workdir=/tmp/en_smoke

The study is `tradeoffs.studies.exposure_notification`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("exposure_notification", default_config="exposure_notification.py")
