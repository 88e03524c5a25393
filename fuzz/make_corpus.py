#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<harness>/): small valid inputs and
a few near-misses for each parser. Audio seeds are not committed: the build target
fuzz_make_audio_seeds writes them at test time. Run: python3 fuzz/make_corpus.py"""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def npy(descr, shape, payload, version=1):
    shape_text = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    prefix = 10 if version == 1 else 12
    total = (prefix + len(d) + 1 + 63) // 64 * 64
    d = d + " " * (total - prefix - len(d) - 1) + "\n"
    length = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + length + d.encode() + payload


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def main():
    f32 = lambda n: struct.pack("<%df" % n, *[0.25 * i for i in range(n)])
    put("npy", "f32_2x3", npy("<f4", (2, 3), f32(6)))
    put("npy", "i64_4", npy("<i8", (4,), struct.pack("<4q", 1, -2, 3, 1 << 40)))
    put("npy", "v2_scalar", npy("<f4", (), f32(1), version=2))
    put("npy", "empty", npy("<f4", (0, 5), b""))
    put("npy", "big_shape", npy("<f4", (128, 431, 72000), b"\0" * 64))
    put("npy", "bad_dtype", npy("<f8", (2,), b"\0" * 16))

    meta = {"gnet.genres": '["rock","jazz"]', "gnet.thresholds": "[0.5,0.25]",
            "gnet.audio": '{"sample_rate":22050,"n_fft":2048,"hop_length":512,"n_mels":128,'
                          '"chunk_seconds":10,"top_db":80,"normalisation":"minmax"}'}
    put("safetensors", "small", safetensors([("w", "F32", [2, 3], f32(6)),
                                             ("n", "I64", [], struct.pack("<q", 7))], meta))
    put("safetensors", "fc", safetensors([("fc.weight", "F32", [2, 4], f32(8)),
                                          ("fc.bias", "F32", [2], f32(2))], meta))
    put("safetensors", "no_meta", safetensors([("x", "F32", [0], b"")]))
    put("safetensors", "overlap", struct.pack("<Q", 64) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'[:64] + b"\0" * 8)

    for name, value in meta.items():
        put("json", name, value)
    put("json", "nested", '{"a":[1,2.5,-3e4,true,false,null,{"b":"\\u00e9\\ud83c\\udfb5"}],"c":{}}')
    put("json", "state", '{"epoch":1,"best_epoch":1,"best_f1":0.5,"bad_epochs":0,"history":'
                         '[{"epoch":1,"lr":0.001,"train_loss":0.7,"train_macro_f1":0.2,'
                         '"val_loss":0.6,"val_f1":0.5,"seconds":1.5}]}')
    put("json", "dup", '{"a":1,"a":2}')

    put("labels_csv", "ok", "track,rock,pop\na.wav,1,0\nrock/b.wav,0,1\n")
    put("labels_csv", "quoted", 'track,"ro,ck",pop\r\n"a.wav",1,1\r\n')
    put("labels_csv", "bad_cell", "track,rock\na.wav,2\n")
    put("labels_csv", "escape", "track,rock\n../a.wav,1\n/etc/x.wav,0\nmissing.wav,1\n")
    put("labels_csv", "bom", "\ufefftrack,rock\nrock/b.wav,1\n")

    put("manifest", "ok", "rock\njazz\n\0file,split,track,start_s,rock,jazz\n"
                          "train/000000_000.npy,train,a.wav,0,1,0\n"
                          "val/000001_000.npy,val,b.wav,10,0,1\n")
    put("manifest", "both_splits", "rock\n\0file,split,track,start_s,rock\n"
                                   "train/x.npy,train,a.wav,0,1\nval/y.npy,val,a.wav,10,1\n")
    put("manifest", "bad_header", "rock\n\0file,split,track\n")

    # Audio seeds are not committed: fuzz_make_audio_seeds writes them into the build folder
    # (ctest's fuzz_audio_seeds fixture, scripts/fuzz).


if __name__ == "__main__":
    main()
