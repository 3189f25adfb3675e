"""Regenerates the vendored `spoken_digits` set (needs espeak-ng on PATH; run once, offline).

    apt-get install -y espeak-ng            # the set here was made with eSpeak NG 1.51
    pip install soundfile scipy
    python make_spoken_digits.py --out .    # writes utterances.flac, index.csv, SHA256SUMS

Every utterance is a random string of 1-4 digits spoken as English words by one espeak-ng
voice variant (the voice family - male, female, klatt - is the group attribute) in one of six
English accents, at a random speed (words per minute) and pitch. espeak-ng writes 22,050 Hz;
the audio is resampled to 8 kHz (`scipy.signal.resample_poly`, 160/441), trimmed of leading
and trailing silence, peak-normalised to 0.9 and stored as 16-bit PCM. All utterances are
concatenated into one FLAC stream (one file compresses better than 1,200 small ones);
`index.csv` gives each utterance's offset and length in samples, its digits and its settings.

Splits: the voices `HELDOUT_VOICES` (one per family) never appear in `train` or `test`; they
form `heldout_voice`, the speaker-shift test. The seen-voice utterances are split at random
into `train` and `test`. Everything is drawn from `numpy.random.default_rng(SEED)`.
"""

import argparse
import csv
import hashlib
import io
import os
import subprocess
import tempfile

import numpy as np
import scipy.signal
import soundfile

SEED = 0
RATE = 8000
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
FAMILIES = {
    "male": ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"),
    "female": ("f1", "f2", "f3", "f4", "f5"),
    "klatt": ("klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6"),
}
HELDOUT_VOICES = ("m8", "f5", "klatt6")
COUNTS = {"train": 900, "test": 150, "heldout_voice": 150}
SPEED_WPM = (130, 200)
PITCH = (25, 75)
SILENCE = 0.02  # |x| below this fraction of the peak counts as silence when trimming.


def synthesize(text: str, voice: str, accent: str, speed: int, pitch: int) -> np.ndarray:
  with tempfile.NamedTemporaryFile(suffix=".wav") as f:
    subprocess.run(["espeak-ng", "-v", f"{accent}+{voice}", "-s", str(speed), "-p", str(pitch),
                    "-w", f.name, text], check=True, capture_output=True)
    audio, rate = soundfile.read(f.name, dtype="float64")
  assert rate == 22050, rate
  audio = scipy.signal.resample_poly(audio, 160, 441)
  loud = np.flatnonzero(np.abs(audio) > SILENCE * np.abs(audio).max())
  audio = audio[max(0, loud[0] - 80):loud[-1] + 80]  # keep 10 ms either side
  audio = 0.9 * audio / np.abs(audio).max()
  return np.round(audio * 32767).astype(np.int16)


def plan(rng: np.random.Generator) -> list[dict]:
  seen = [(fam, v) for fam, vs in FAMILIES.items() for v in vs if v not in HELDOUT_VOICES]
  held = [(fam, v) for fam, vs in FAMILIES.items() for v in vs if v in HELDOUT_VOICES]
  rows = []
  for split, count in COUNTS.items():
    voices = held if split == "heldout_voice" else seen
    for _ in range(count):
      family, voice = voices[rng.integers(len(voices))]
      digits = "".join(str(d) for d in rng.integers(0, 10, size=rng.integers(1, 5)))
      rows.append({"split": split, "digits": digits, "family": family, "voice": voice,
                   "accent": ACCENTS[rng.integers(len(ACCENTS))],
                   "speed": int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                   "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1))})
  order = rng.permutation(len(rows))  # ids do not reveal the split
  return [dict(rows[i], id=k) for k, i in enumerate(order)]


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
  out = parser.parse_args().out
  rows = sorted(plan(np.random.default_rng(SEED)), key=lambda r: r["id"])
  pieces, offset = [], 0
  for row in rows:
    text = " ".join(WORDS[int(c)] for c in row["digits"])
    audio = synthesize(text, row["voice"], row["accent"], row["speed"], row["pitch"])
    row.update(offset=offset, length=len(audio))
    offset += len(audio)
    pieces.append(audio)
  soundfile.write(os.path.join(out, "utterances.flac"), np.concatenate(pieces), RATE,
                  subtype="PCM_16", format="FLAC")
  fields = ["id", "split", "digits", "family", "voice", "accent", "speed", "pitch", "offset",
            "length"]
  with open(os.path.join(out, "index.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
  with open(os.path.join(out, "SHA256SUMS"), "w") as f:
    for name in ("index.csv", "utterances.flac"):
      with open(os.path.join(out, name), "rb") as g:
        f.write(f"{hashlib.sha256(g.read()).hexdigest()}  {name}\n")


if __name__ == "__main__":
  main()
