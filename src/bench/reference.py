#!/usr/bin/python3
"""The Python/OpenCV reference pipeline for `npm run bench -- --vs-python`: cv2.imread, a
65,536-entry uint16→uint8 lookup table built once per model, cv2.resize INTER_LINEAR, one fused
scale+shift per channel into a preallocated NCHW float32 array. Prints JSON medians (ms).

usage: reference.py RUNS MIN MAX FILE...
"""
import json, sys, time
import numpy as np
import cv2

runs = int(sys.argv[1])
lo, hi = float(sys.argv[2]), float(sys.argv[3])
files = sys.argv[4:]
H, W = 2000, 1000
mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
x = np.arange(65536, dtype=np.float64)
lut = np.floor((np.clip(x, lo, hi) - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)  # once per model
scale = (1.0 / (255.0 * std)).astype(np.float32)
shift = (-mean / std).astype(np.float32)
tensor = np.empty((1, 3, H, W), dtype=np.float32)  # preallocated

out = {}
for f in files:
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        img = cv2.imread(f, cv2.IMREAD_UNCHANGED)
        small = cv2.resize(lut[img], (W, H), interpolation=cv2.INTER_LINEAR)
        for c in range(3):
            np.multiply(small, scale[c], out=tensor[0, c], casting='unsafe')
            tensor[0, c] += shift[c]
        if i:
            times.append((time.perf_counter() - t0) * 1000)
    out[f] = float(np.median(times))
print(json.dumps(out))
