#!/usr/bin/python3
"""gnet's CPU path against PyTorch's, side by side in one run, as A/B pairs.

The machine this is written for is a shared 2-core VM: a single timing of each side says little,
so every pair runs gnet and PyTorch back to back on the same input (gnet first in odd pairs,
PyTorch first in even ones), and each pair gives its own ratio PyTorch time / gnet time (> 1:
gnet is faster). The load average before every run is recorded. Modes:

  step     build/bench_train_step --device cpu --batch B  vs  bench/torch_train_step.py --batch B:
           one training step (zero_grad, forward, BCE, backward, Adam) and one eval forward pass
  train    gnet train --data D --epochs 1 --batch B  vs  bench/torch_train_reference.py (same data,
           same options), whole process, start-up included
  predict  gnet predict INPUT --model M  vs  bench/torch_predict.py INPUT --model M, whole process

  /usr/bin/python3 bench/cpu_vs_torch.py step --batch 32 --pairs 5 [--repeats 3] [--threads 2]
  /usr/bin/python3 bench/cpu_vs_torch.py train --data data/gtzan --batch 8 --pairs 3
  /usr/bin/python3 bench/cpu_vs_torch.py predict --input ../shared/data/gtzan-mini \\
      --model run/best.safetensors --pairs 3
  [--gnet-build build] [--python /usr/bin/python3] [--json out.json]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout, p.stderr))
    return p.stdout + p.stderr, wall


def gnet_step(a):
    out_json = os.path.join(tempfile.mkdtemp(), "step.json")
    run([os.path.join(a.gnet_build, "bench_train_step"), "--device", "cpu", "--batch",
         str(a.batch), "--repeats", str(a.repeats), "--json", out_json],
        env=dict(os.environ, GNET_CPU_THREADS=str(a.threads)))
    with open(out_json) as f:
        res = {r["op"]: r["median_ms"] for r in json.load(f)["results"]}
    shutil.rmtree(os.path.dirname(out_json))
    return {"step_ms": res["train_step"], "inference_ms": res["inference"]}


def torch_step(a):
    text, _ = run([a.python, os.path.join(HERE, "torch_train_step.py"), "--batch", str(a.batch),
                   "--threads", str(a.threads), "--repeats", str(a.repeats)])
    step = float(re.search(r"train_step .*?median ([0-9.]+) ms", text).group(1))
    inf = float(re.search(r"inference .*?median ([0-9.]+) ms", text).group(1))
    return {"step_ms": step, "inference_ms": inf}


def gnet_train(a):
    out = tempfile.mkdtemp()
    _, wall = run([os.path.join(a.gnet_build, "gnet"), "train", "--data", a.data, "--out",
                   os.path.join(out, "run"), "--epochs", "1", "--batch", str(a.batch), "--device",
                   "cpu"], env=dict(os.environ, GNET_CPU_THREADS=str(a.threads)))
    shutil.rmtree(out)
    return {"wall_s": wall}


def torch_train(a):
    _, wall = run([a.python, os.path.join(HERE, "torch_train_reference.py"), "--data", a.data,
                   "--epochs", "1", "--batch", str(a.batch)],
                  env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
    return {"wall_s": wall}


def gnet_predict(a):
    _, wall = run([os.path.join(a.gnet_build, "gnet"), "predict", *a.input, "--model", a.model,
                   "--device", "cpu", "--batch", str(a.batch)],
                  env=dict(os.environ, GNET_CPU_THREADS=str(a.threads)))
    return {"wall_s": wall}


def torch_predict(a):
    _, wall = run([a.python, os.path.join(HERE, "torch_predict.py"), *a.input, "--model", a.model,
                   "--batch", str(a.batch), "--threads", str(a.threads)])
    return {"wall_s": wall}


SIDES = {"step": (gnet_step, torch_step), "train": (gnet_train, torch_train),
         "predict": (gnet_predict, torch_predict)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=sorted(SIDES))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data")
    ap.add_argument("--input", nargs="+")
    ap.add_argument("--model")
    ap.add_argument("--gnet-build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.mode == "train" and not a.data:
        ap.error("train needs --data")
    if a.mode == "predict" and not (a.input and a.model):
        ap.error("predict needs --input and --model")
    gnet_side, torch_side = SIDES[a.mode]
    pairs = []
    for i in range(a.pairs):
        order = [("gnet", gnet_side), ("torch", torch_side)]
        if i % 2:
            order.reverse()
        pair = {}
        for name, side in order:
            pair[name + "_load"] = load()
            pair[name] = side(a)
        pairs.append(pair)
        keys = pair["gnet"].keys()
        print("pair %d: " % (i + 1) + "  ".join(
            "%s gnet %.3f torch %.3f ratio %.2f" % (k, pair["gnet"][k], pair["torch"][k],
                                                   pair["torch"][k] / pair["gnet"][k])
            for k in keys) + "  (load %.1f / %.1f)" % (pair["gnet_load"], pair["torch_load"]),
            flush=True)
    keys = pairs[0]["gnet"].keys()
    summary = {}
    for k in keys:
        g = [p["gnet"][k] for p in pairs]
        t = [p["torch"][k] for p in pairs]
        r = [p["torch"][k] / p["gnet"][k] for p in pairs]
        summary[k] = {"gnet_median": statistics.median(g), "torch_median": statistics.median(t),
                      "ratio_median": statistics.median(r), "ratio_min": min(r),
                      "ratio_max": max(r)}
        print("%s: gnet median %.3f, torch median %.3f; torch/gnet per pair: median %.2f "
              "(%.2f-%.2f)" % (k, summary[k]["gnet_median"], summary[k]["torch_median"],
                               summary[k]["ratio_median"], min(r), max(r)))
    loads = [p[s + "_load"] for p in pairs for s in ("gnet", "torch")]
    print("load average before the runs: %.1f-%.1f (%d CPUs)" % (min(loads), max(loads),
                                                                os.cpu_count()))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"mode": a.mode, "args": vars(a), "pairs": pairs, "summary": summary}, f,
                      indent=1)


if __name__ == "__main__":
    main()
