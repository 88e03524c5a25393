#!/usr/bin/python3
"""The PyTorch equivalent of `gnet predict FILE_OR_DIR... --model M`, for timing side by side.

The same pipeline as gnet's CPU path, in one process: every audio file (a folder is searched
recursively for WAV/FLAC/OGG/MP3/AU/AIFF) is decoded with soundfile (libsndfile, as gnet), averaged
to mono, resampled to 22050 Hz with torchaudio.functional.resample when needed (gnet uses libsoxr),
cut into 10-second chunks from the start (a remainder is dropped; a track shorter than one chunk is
zero-padded to one chunk), each chunk becomes torchaudio's MelSpectrogram (n_fft 2048, hop 512,
128 Slaney mel bands with Slaney norm, power 2, centred with zero padding) in dB
(10 log10 max(S, 1e-10), clipped at max - 80 dB) scaled to [0, 1] per chunk; the chunks of every
track go through torchvision's ResNet18 (1-channel conv1, one output per genre) in eval mode under
no_grad in batches of --batch, sigmoid, mean over each track's chunks, and the top-k genres are
printed per track. The checkpoint is gnet's .safetensors (torchvision's state_dict names), read
here with numpy; the genre names come from its metadata.

  /usr/bin/python3 bench/torch_predict.py ../shared/data/gtzan-mini --model run/best.safetensors \
      [--batch 32] [--threads 2] [--top-k 3]

Needs Debian's python3-torch, python3-torchvision, python3-torchaudio and python3-soundfile (not
needed to build, run or test gnet). Prints one line per track and, on stderr, the time spent (whole process from the first line of
main, the interpreter and `import torch` before it are reported separately).
"""
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
import torchvision  # noqa: E402

T_IMPORTED = time.perf_counter()

SR, CHUNK = 22050, 220500
AUDIO = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd", ".aif", ".aiff")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
        tensors[name] = torch.from_numpy(
            np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"]).copy())
    return tensors, meta


def genre_names(meta, count):
    for key in ("genres", "gnet.genres"):
        if key in meta:
            value = meta[key]
            names = json.loads(value) if value.startswith("[") else value.split(",")
            if len(names) == count:
                return names
    return [f"genre{i}" for i in range(count)]


def audio_files(inputs):
    out = []
    for p in inputs:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                out += [os.path.join(root, f) for f in files if f.lower().endswith(AUDIO)]
        else:
            out.append(p)
    return sorted(out)


def chunks_of(path):
    y, sr = soundfile.read(path, dtype="float32", always_2d=True)
    y = torch.from_numpy(y.mean(axis=1))
    if sr != SR:
        y = torchaudio.functional.resample(y, sr, SR)
    n = y.numel() // CHUNK
    if n == 0:
        return torch.nn.functional.pad(y, (0, CHUNK - y.numel())).reshape(1, CHUNK)
    return y[: n * CHUNK].reshape(n, CHUNK)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--top-k", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    state, meta = read_safetensors(args.model)
    G = state["fc.weight"].shape[0]
    genres = genre_names(meta, G)
    model = torchvision.models.resnet18(num_classes=G)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.load_state_dict(state)
    model.eval()
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=2048, hop_length=512, n_mels=128, f_min=0.0, f_max=SR / 2,
        power=2.0, norm="slaney", mel_scale="slaney", center=True, pad_mode="constant")

    files = audio_files(args.inputs)
    tracks, specs = [], []
    with torch.no_grad():
        for path in files:
            c = chunks_of(path)
            s = 10.0 * torch.log10(torch.clamp(mel(c), min=1e-10))
            s = torch.maximum(s, s.amax(dim=(1, 2), keepdim=True) - 80.0)
            lo, hi = s.amin(dim=(1, 2), keepdim=True), s.amax(dim=(1, 2), keepdim=True)
            s = torch.where(hi > lo, (s - lo) / (hi - lo).clamp(min=1e-30), torch.zeros_like(s))
            tracks.append((path, c.shape[0]))
            specs.append(s)
        x = torch.cat(specs).unsqueeze(1)
        probs = torch.cat([torch.sigmoid(model(x[i:i + args.batch]))
                           for i in range(0, x.shape[0], args.batch)])
    c0 = 0
    for path, n in tracks:
        p = probs[c0:c0 + n].mean(dim=0)
        c0 += n
        top = torch.argsort(p, descending=True)[: args.top_k]
        print(path + "  " + "  ".join(f"{genres[int(g)]} {float(p[g]):.3f}" for g in top))
    t_end = time.perf_counter()
    print(f"torch_predict: {len(files)} files, {x.shape[0]} chunks: {t_end - T_START:.2f} s "
          f"(imports {T_IMPORTED - T_START:.2f} s, work {t_end - T_IMPORTED:.2f} s)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
