#!/usr/bin/env python3
"""Reference for `gnet prepare`: what the original design did, librosa per file on the CPU.

For every audio file under AUDIO_DIR (recursively): librosa.load at 22050 Hz mono (soxr_hq
resampling), non-overlapping 10 s chunks (remainder dropped), melspectrogram (n_fft 2048, hop 512,
128 Slaney mels, fmax 11025, center=True, pad_mode='constant'), power_to_db (ref 1, amin 1e-10,
top_db 80), min-max to [0, 1], np.save per chunk. Prints tracks/s and times real time.

Only for benchmarks: gnet never needs Python. Usage:
    python3 bench/librosa_prepare.py AUDIO_DIR OUT_DIR [--jobs N]
"""
import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import librosa
import numpy as np

SR, N_FFT, HOP, N_MELS, CHUNK = 22050, 2048, 512, 128, 220500
EXTS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd", ".aif", ".aiff", ".aifc")


def one_track(args):
    path, out_dir, index = args
    y, _ = librosa.load(path, sr=SR, mono=True, res_type="soxr_hq")
    n = len(y) // CHUNK
    for c in range(n):
        s = librosa.feature.melspectrogram(y=y[c * CHUNK:(c + 1) * CHUNK], sr=SR, n_fft=N_FFT,
                                           hop_length=HOP, n_mels=N_MELS, fmax=SR / 2,
                                           center=True, pad_mode="constant", power=2.0)
        db = librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=80.0)
        lo, hi = db.min(), db.max()
        x = (db - lo) / (hi - lo) if hi > lo else np.zeros_like(db)
        np.save(os.path.join(out_dir, f"{index:06d}_{c:03d}.npy"), x.astype(np.float32))
    return len(y) / SR, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audio_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(a.audio_dir) for f in fs
                   if f.lower().endswith(EXTS))
    os.makedirs(a.out_dir, exist_ok=True)
    t0 = time.perf_counter()
    work = [(f, a.out_dir, i) for i, f in enumerate(files)]
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            results = list(ex.map(one_track, work))
    else:
        results = [one_track(w) for w in work]
    dt = time.perf_counter() - t0
    audio = sum(r[0] for r in results)
    chunks = sum(r[1] for r in results)
    print(f"librosa {librosa.__version__}: {len(files)} tracks, {chunks} chunks in {dt:.2f} s: "
          f"{len(files) / dt:.2f} tracks/s, {audio / dt:.0f}x real time (jobs={a.jobs})")


if __name__ == "__main__":
    sys.exit(main())
