#!/usr/bin/python3
"""The Python/OpenCV reference pipeline for `npm run bench -- --vs-python`: cv2.imread, a
65,536-entry uint16→uint8 lookup table built once per model, cv2.resize INTER_LINEAR, one fused
scale+shift per channel into a preallocated NCHW float32 array.

usage: reference.py MIN MAX, then one capture path per line on stdin: runs the pipeline on it
once and answers one line, its time in ms. The bench alternates single runs of ours and of this
one, so the host's slow and fast phases (seconds long here) reach both sides alike.
"""
import sys, time
import numpy as np
import cv2

lo, hi = float(sys.argv[1]), float(sys.argv[2])
H, W = 2000, 1000
mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
x = np.arange(65536, dtype=np.float64)
lut = np.floor((np.clip(x, lo, hi) - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)  # once per model
scale = (1.0 / (255.0 * std)).astype(np.float32)
shift = (-mean / std).astype(np.float32)
tensor = np.empty((1, 3, H, W), dtype=np.float32)  # preallocated

for line in sys.stdin:
    t0 = time.perf_counter()
    img = cv2.imread(line.rstrip('\n'), cv2.IMREAD_UNCHANGED)
    small = cv2.resize(lut[img], (W, H), interpolation=cv2.INTER_LINEAR)
    for c in range(3):
        np.multiply(small, scale[c], out=tensor[0, c], casting='unsafe')
        tensor[0, c] += shift[c]
    ms = (time.perf_counter() - t0) * 1000
    sys.stdout.write(f"{ms:.4f}\n")
    sys.stdout.flush()
