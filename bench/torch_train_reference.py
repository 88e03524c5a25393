#!/usr/bin/python3
"""PyTorch reference for `gnet train`: torchvision's ResNet18 (1-channel conv1, one output per
genre) trained with the same settings on the same prepared folder (the same .npy chunks and the
same train/val split from manifest.csv), printing the same per-epoch figures as gnet:
train loss, val loss, chunk- and track-level (mean / max aggregation) macro F1 at threshold 0.5,
macro mAP (sklearn's average_precision_score semantics: tied scores enter together) and macro
ROC-AUC (Mann-Whitney, ties count 1/2). Genres without a positive are left out of macro averages.

Not bit-identical to gnet (PyTorch's own initialisation and shuffling RNG), but the same recipe:
Adam/AdamW (PyTorch defaults betas 0.9/0.999, eps 1e-8), BCE-with-logits with optional positive
weights negatives/positives clamped to [1, 100], learning rate constant or cosine to 0 per step,
BatchNorm eps 1e-5 momentum 0.1, evaluation in eval mode.

Usage:
  /usr/bin/python3 bench/torch_train_reference.py --data DATA_DIR --epochs 30 --batch 32 --lr 1e-3 \
      [--weight-decay 0] [--optimizer adam|adamw] [--schedule constant|cosine] [--seed 0] \
      [--pos-weight auto|none] [--device cpu|cuda] [--csv out.csv]
"""
import argparse
import csv
import math
import os
import sys
import time

import numpy as np
import torch
import torchvision


def load_prepared(data_dir):
    with open(os.path.join(data_dir, "genres.txt"), encoding="utf-8") as f:
        genres = [line.strip() for line in f if line.strip()]
    rows = []
    with open(os.path.join(data_dir, "manifest.csv"), newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header != ["file", "split", "track", "start_s"] + genres:
            sys.exit(f"{data_dir}/manifest.csv: header does not match genres.txt")
        for r in reader:
            if r:
                rows.append((r[0], r[1], r[2], [float(v) for v in r[4:]]))
    return genres, rows


class Chunks(torch.utils.data.Dataset):
    def __init__(self, data_dir, rows):
        self.data_dir, self.rows = data_dir, rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        x = np.load(os.path.join(self.data_dir, self.rows[i][0])).astype(np.float32)
        assert x.shape == (128, 431), f"{self.rows[i][0]}: shape {x.shape}"
        return torch.from_numpy(x)[None], torch.tensor(self.rows[i][3]), i


def average_precision(scores, labels):
    p = labels.sum()
    if p == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, l = scores[order], labels[order]
    ap, tp, prev_recall, i, n = 0.0, 0.0, 0.0, 0, len(s)
    while i < n:
        j = i
        while j < n and s[j] == s[i]:
            tp += l[j]
            j += 1
        recall = tp / p
        ap += (recall - prev_recall) * (tp / j)
        prev_recall, i = recall, j
    return ap


def roc_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def metrics(probs, targets, threshold=0.5):
    pred = probs >= threshold
    t = targets > 0.5
    tp, fp, fn = (pred & t).sum(0), (pred & ~t).sum(0), (~pred & t).sum(0)
    micro_f1 = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    have = t.sum(0) > 0
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    aps = [average_precision(probs[:, g], targets[:, g]) for g in range(probs.shape[1])]
    aucs = [roc_auc(probs[:, g], targets[:, g]) for g in range(probs.shape[1])]
    mean = lambda v: float(np.mean(v)) if len(v) else float("nan")
    return {
        "micro_f1": float(micro_f1),
        "macro_f1": mean(f1[have]),
        "map": mean([a for a in aps if a is not None]),
        "roc_auc": mean([a for a in aucs if a is not None]),
    }


def aggregate(probs, tracks, how):
    names = list(dict.fromkeys(tracks))
    index = {n: k for k, n in enumerate(names)}
    out = np.full((len(names), probs.shape[1]), -np.inf if how == "max" else 0.0)
    count = np.zeros(len(names))
    for i, t in enumerate(tracks):
        k = index[t]
        count[k] += 1
        out[k] = np.maximum(out[k], probs[i]) if how == "max" else out[k] + probs[i]
    return out if how == "max" else out / count[:, None], index


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--optimizer", choices=["adam", "adamw"], default="adam")
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pos-weight", choices=["auto", "none"], default="none")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--csv", help="write one row per epoch here")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    genres, rows = load_prepared(a.data)
    G = len(genres)
    train_rows = [r for r in rows if r[1] == "train"]
    val_rows = [r for r in rows if r[1] == "val"]
    dev = torch.device(a.device)

    model = torchvision.models.resnet18(num_classes=G)
    model.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    torch.nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.to(dev)

    pos_weight = None
    if a.pos_weight == "auto":
        t = np.array([r[3] for r in train_rows])
        pos = t.sum(0)
        w = np.where(pos > 0, np.clip((len(t) - pos) / np.maximum(pos, 1), 1, 100), 1.0)
        pos_weight = torch.tensor(w, dtype=torch.float32, device=dev)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt_cls = torch.optim.AdamW if a.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)

    gen = torch.Generator().manual_seed(a.seed)
    train_dl = torch.utils.data.DataLoader(Chunks(a.data, train_rows), batch_size=a.batch, shuffle=True,
                                           generator=gen, num_workers=a.workers, pin_memory=dev.type == "cuda")
    val_dl = torch.utils.data.DataLoader(Chunks(a.data, val_rows), batch_size=a.batch, shuffle=False,
                                         num_workers=a.workers)
    total_steps = a.epochs * len(train_dl)
    step = 0
    writer = None
    if a.csv:
        out = open(a.csv, "w", newline="")
        writer = csv.writer(out)
        writer.writerow(["epoch", "lr", "seconds", "train_loss", "val_loss"] +
                        [f"val_{lvl}_{k}" for lvl in ("chunk", "track_mean", "track_max")
                         for k in ("micro_f1", "macro_f1", "map", "roc_auc")])
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {dev}, "
          f"{len(train_rows)} train / {len(val_rows)} val chunks, {G} genres")
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        model.train()
        loss_sum, seen = 0.0, 0
        for x, y, _ in train_dl:
            lr = a.lr if a.schedule == "constant" else 0.5 * a.lr * (1 + math.cos(math.pi * step / total_steps))
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(x)
            seen += len(x)
        train_seconds = time.time() - t0
        model.eval()
        probs, targets, vloss = [], [], 0.0
        with torch.no_grad():
            for x, y, _ in val_dl:
                z = model(x.to(dev))
                vloss += loss_fn(z, y.to(dev)).item() * len(x)
                probs.append(torch.sigmoid(z).cpu().numpy())
                targets.append(y.numpy())
        probs, targets = np.concatenate(probs).astype(np.float64), np.concatenate(targets)
        tracks = [r[2] for r in val_rows]
        chunk = metrics(probs, targets)
        tmean, index = aggregate(probs, tracks, "mean")
        tmax, _ = aggregate(probs, tracks, "max")
        ttargets = np.zeros_like(tmean)
        for i, t in enumerate(tracks):
            ttargets[index[t]] = targets[i]
        mean_m, max_m = metrics(tmean, ttargets), metrics(tmax, ttargets)
        print(f"epoch {epoch}/{a.epochs}  lr {lr:.2e}  train loss {loss_sum / seen:.4f}  val loss "
              f"{vloss / len(val_rows):.4f}  chunk F1 {chunk['macro_f1']:.4f} mAP {chunk['map']:.4f}  "
              f"track mean F1 {mean_m['macro_f1']:.4f} mAP {mean_m['map']:.4f} AUC {mean_m['roc_auc']:.4f}  "
              f"track max F1 {max_m['macro_f1']:.4f}  {time.time() - t0:.1f} s "
              f"({seen / train_seconds:.1f} samples/s)", flush=True)
        if writer:
            writer.writerow([epoch, lr, f"{time.time() - t0:.3f}", loss_sum / seen, vloss / len(val_rows)] +
                            [m[k] for m in (chunk, mean_m, max_m) for k in ("micro_f1", "macro_f1", "map", "roc_auc")])
            out.flush()


if __name__ == "__main__":
    main()
