#!/usr/bin/python3
"""The PyTorch yardstick for bench/bench_train_step: one ResNet18 training step on the CPU.

torchvision's resnet18(num_classes=10) with a 1-channel 7x7/2 conv1, train mode, float32, a batch
of (N, 1, 128, 431) (gnet's pattern input), BCEWithLogitsLoss with pos_weight, Adam(lr=1e-3):
zero_grad + forward + loss + backward + step, as gnet's ResNet18::train_step. Median of the
repeats after warm-up, with torch.set_num_threads(--threads) (default: all cores, as gnet).

  /usr/bin/python3 bench/torch_train_step.py --batch 32 --threads 2 --repeats 5
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch
import torchvision


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    N, H, W, G = args.batch, 128, 431, 10
    model = torchvision.models.resnet18(num_classes=G)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.train()
    i = np.arange(N * H * W, dtype=np.float64)
    x = torch.from_numpy((0.5 + 0.5 * np.sin(0.011 * i) * np.cos(0.0037 * i)).astype(np.float32)).reshape(N, 1, H, W)
    t = torch.from_numpy((np.arange(N * G) % 3 == 0).astype(np.float32)).reshape(N, G)
    pw = torch.from_numpy((1.0 + 0.25 * np.arange(G)).astype(np.float32))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    model.eval()
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        itimes = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model(x)
            itimes.append((time.perf_counter() - t0) * 1e3)
    imed = statistics.median(itimes)
    print("torch %s, torchvision %s, threads %d" % (torch.__version__, torchvision.__version__, torch.get_num_threads()))
    print("train_step N%d x [1, 128, 431] G%d: median %.1f ms, min %.1f ms, %.2f samples/s, loss %.4f"
          % (N, G, med, min(times), N / (med * 1e-3), loss))
    print("inference  N%d x [1, 128, 431] G%d: median %.1f ms, min %.1f ms, %.2f chunks/s"
          % (N, G, imed, min(itimes), N / (imed * 1e-3)))


if __name__ == "__main__":
    main()
