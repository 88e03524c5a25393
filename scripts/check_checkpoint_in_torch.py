#!/usr/bin/python3
"""Loads a gnet checkpoint (.safetensors) into torchvision's resnet18 and checks it.

The file is parsed with json + numpy (the `safetensors` package is not needed), the model is
torchvision's resnet18(num_classes=G) with a 1-channel 7x7/2 conv1, loaded with
load_state_dict(strict=True): every name, shape and dtype must fit. The metadata is printed.
With --expect, the eval-mode logits on gnet's pattern batch (nn/model_init.h: x flat i =
0.5 + 0.5*sin(0.011 i)*cos(0.0037 i), shape (batch, 1, height, width)) are compared with the given
comma-separated values (gnet's logits), |got - want| <= 1e-4 * max|want| + 1e-4 * |want|.

  /usr/bin/python3 scripts/check_checkpoint_in_torch.py model.safetensors
  /usr/bin/python3 scripts/check_checkpoint_in_torch.py m.safetensors --batch 2 --height 64 --width 96 --expect=0.1,...
Exit code 0 when everything matches.
"""
import argparse
import json
import struct
import sys

import numpy as np
import torch
import torchvision

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=431)
    ap.add_argument("--expect", default="")
    args = ap.parse_args()

    state, meta = read_safetensors(args.checkpoint)
    G = state["fc.weight"].shape[0]
    model = torchvision.models.resnet18(num_classes=G)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.load_state_dict(state, strict=True)
    print("loaded %d tensors, %d genres into torchvision %s" % (len(state), G, torchvision.__version__))
    for k, v in sorted(meta.items()):
        print("  %s = %s" % (k, v))
    if "gnet.genres" in meta and len(json.loads(meta["gnet.genres"])) != G:
        print("FAIL: gnet.genres does not match fc.weight rows")
        return 1
    if not args.expect:
        return 0

    n = args.batch * args.height * args.width
    i = np.arange(n, dtype=np.float64)
    x = (0.5 + 0.5 * np.sin(0.011 * i) * np.cos(0.0037 * i)).astype(np.float32)
    x = torch.from_numpy(x).reshape(args.batch, 1, args.height, args.width)
    model.eval()
    with torch.no_grad():
        got = model(x).reshape(-1).double().numpy()
    want = np.array([float(v) for v in args.expect.split(",")])
    if got.shape != want.shape:
        print("FAIL: %d logits, expected %d" % (got.size, want.size))
        return 1
    err = np.abs(got - want)
    tol = 1e-4 * np.abs(want).max() + 1e-4 * np.abs(want)
    print("max abs error %.3g (max |logit| %.3g)" % (err.max(), np.abs(want).max()))
    if np.any(err > tol):
        print("FAIL: torch logits differ from gnet's:\n torch %s\n gnet  %s" % (got, want))
        return 1
    print("OK: torchvision reproduces gnet's logits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
