#!/usr/bin/python3
"""The yardstick for bench/bench_spectrogram: torchaudio on the same workload and settings.

  /usr/bin/python3 bench/torchaudio_spectrogram.py [--batch 32] [--repeats 20] [--warmup 3]

Times MelSpectrogram(sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, f_min=0, f_max=11025,
power=2, norm='slaney', mel_scale='slaney', center=True, pad_mode='constant') + power_to_db (amin 1e-10,
top_db 80, per chunk) + min-max per chunk on `batch` 10-second chunks of float32 audio: on the CPU
with 1 and 2 torch threads and, when torch sees a GPU, on CUDA (synchronised, audio already on the
GPU). Prints the median time per call, chunks/s and x real time, like bench_spectrogram.
The workload is the same formula as bench_spectrogram.cpp's (chirp + chord + LCG noise per chunk).
"""
import argparse
import platform
import time

import numpy as np
import torch
import torchaudio

SR, CHUNK = 22050, 220500


def workload(n):
    i = np.arange(n * CHUNK, dtype=np.int64)
    t = (i % CHUNK) / SR
    c = i // CHUNK
    s = np.empty(n * CHUNK, dtype=np.uint64)
    state = 1
    for k in range(n * CHUNK):  # the same LCG as the C++ benchmark
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        s[k] = state
    noise = (s >> np.uint64(8)).astype(np.float64) / float(1 << 24) - 0.5
    x = (0.3 * np.sin(2 * np.pi * (200.0 + 40.0 * c) * t + 300.0 * t * t)
         + 0.2 * np.sin(2 * np.pi * 440.0 * t) * np.sin(np.pi * t) + 0.05 * noise)
    return torch.from_numpy(x.astype(np.float32).reshape(n, CHUNK))


def log_mel(mel, x):
    s = mel(x)                                        # (n, 128, 431)
    db = 10.0 * torch.log10(torch.clamp(s, min=1e-10))
    hi = db.amax(dim=(1, 2), keepdim=True)
    db = torch.maximum(db, hi - 80.0)
    lo = db.amin(dim=(1, 2), keepdim=True)
    rng = hi - lo
    return torch.where(rng > 0, (db - lo) / torch.where(rng > 0, rng, torch.ones_like(rng)),
                       torch.zeros_like(db))


def time_it(fn, warmup, repeats, sync=lambda: None):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times)), float(np.min(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    x = workload(a.batch)
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=2048, hop_length=512, n_mels=128, f_min=0.0, f_max=11025.0, power=2.0,
        norm="slaney", mel_scale="slaney", center=True, pad_mode="constant")
    print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'device':8} {'impl':28} {'median ms':>10} {'min ms':>10} {'chunks/s':>10} {'x real time':>12}")

    def row(dev, impl, med, mn):
        rate = a.batch / (med * 1e-3)
        print(f"{dev:8} {impl:28} {med:10.2f} {mn:10.2f} {rate:10.1f} {rate * 10:12.0f}")

    with torch.inference_mode():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            med, mn = time_it(lambda: log_mel(mel, x), a.warmup, a.repeats)
            row("cpu", f"torchaudio {threads} thread{'s' if threads > 1 else ''}", med, mn)
        if torch.cuda.is_available():
            mel_gpu, xg = mel.to("cuda"), x.to("cuda")
            med, mn = time_it(lambda: log_mel(mel_gpu, xg), a.warmup, a.repeats, torch.cuda.synchronize)
            row("cuda", "torchaudio (device tensors)", med, mn)
        else:
            print("cuda     skipped: torch sees no GPU")


if __name__ == "__main__":
    main()
