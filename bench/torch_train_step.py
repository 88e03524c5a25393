#!/usr/bin/python3
"""The PyTorch yardstick for bench/bench_train_step: one ResNet18 training step and one inference
pass, on the CPU or a CUDA GPU.

torchvision's resnet18(num_classes=10) with a 1-channel 7x7/2 conv1, a batch of (N, 1, 128, 431)
(gnet's pattern input), BCEWithLogitsLoss with pos_weight, Adam(lr=1e-3): zero_grad + forward +
loss + backward + step, as gnet's ResNet18::train_step; then eval-mode forward passes under
no_grad (what `gnet predict` runs). Median of the repeats after warm-up.

  CPU:  /usr/bin/python3 bench/torch_train_step.py --batch 32 --threads 2 --repeats 5
  GPU:  python3 bench/torch_train_step.py --device cuda --batch 32 --precision fp32
        python3 bench/torch_train_step.py --device cuda --batch 32 --precision tf32
        python3 bench/torch_train_step.py --device cuda --batch 32 --precision amp --channels-last

--precision fp32 disables TF32 (true FP32, what gnet computes), tf32 allows TF32 tensor cores in
cuDNN/cuBLAS convolutions and matmuls, amp runs forward and loss under torch.autocast(float16)
with a GradScaler. On the GPU every timed region ends with torch.cuda.synchronize().
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
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["fp32", "tf32", "amp"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        tf32 = args.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    amp = args.precision == "amp"
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    N, H, W, G = args.batch, 128, 431, 10
    model = torchvision.models.resnet18(num_classes=G)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model = model.to(dev, memory_format=fmt)
    model.train()
    i = np.arange(N * H * W, dtype=np.float64)
    x = torch.from_numpy((0.5 + 0.5 * np.sin(0.011 * i) * np.cos(0.0037 * i)).astype(np.float32))
    x = x.reshape(N, 1, H, W).to(dev).contiguous(memory_format=fmt)
    t = torch.from_numpy((np.arange(N * G) % 3 == 0).astype(np.float32)).reshape(N, G).to(dev)
    pw = torch.from_numpy((1.0 + 0.25 * np.arange(G)).astype(np.float32)).to(dev)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pw)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.cuda.amp.GradScaler(enabled=amp and cuda)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast(device_type=dev.type, dtype=torch.float16 if cuda else torch.bfloat16,
                            enabled=amp):
            loss = loss_fn(model(x), t)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    def timed(fn, reps):
        times = []
        for _ in range(reps):
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
        return times, out

    for _ in range(args.warmup):
        step()
    times, loss = timed(step, args.repeats)
    med = statistics.median(times)

    model.eval()
    with torch.no_grad(), torch.autocast(device_type=dev.type,
                                         dtype=torch.float16 if cuda else torch.bfloat16,
                                         enabled=amp):
        for _ in range(args.warmup):
            model(x)
        itimes, _ = timed(lambda: model(x), args.repeats)
    imed = statistics.median(itimes)

    name = torch.cuda.get_device_name() if cuda else "cpu, %d threads" % torch.get_num_threads()
    print("torch %s, torchvision %s, %s, precision %s%s" % (
        torch.__version__, torchvision.__version__, name, args.precision,
        ", channels_last" if args.channels_last else ""))
    print("train_step N%d x [1, 128, 431] G%d: median %.1f ms, min %.1f ms, %.2f samples/s, loss %.4f"
          % (N, G, med, min(times), N / (med * 1e-3), float(loss)))
    print("inference  N%d x [1, 128, 431] G%d: median %.1f ms, min %.1f ms, %.2f chunks/s"
          % (N, G, imed, min(itimes), N / (imed * 1e-3)))


if __name__ == "__main__":
    main()
