;; The preprocessing hot path in WebAssembly: the lookup table and the horizontal pass of the
;; INTER_LINEAR resize (SIMD where the plan allows), the vertical pass and normalisation. Source of
;; src/prepare/resize-wasm.ts (scripts/build-wasm.mjs assembles it with wabt; a test checks the two
;; agree). Same arithmetic as the JavaScript in resize.ts, bit for bit:
;;   hrow:   row8[i] = lut[data[i]], then
;;           h[dx] = row8[xofs[dx]]·a0[dx] + row8[xofs[dx]+1]·a1[dx]   (11-bit weights; a1 = 0 at
;;           the right edge, where the byte after the row is read and multiplied by 0)
;;   vemit:  v = (((b0·(hA>>4))>>16) + ((b1·(hB>>4))>>16) + 2) >> 2      (OpenCV's rounding)
;;           out_c = f32(f32(v)·scale_c) + shift_c                          (float32, no FMA)
(module
  (memory (export "memory") 1)

  ;; $xw: per destination column, i32 source offset then i32 a0, i32 a1 (12 bytes)
  (func $hpass (param $row i32) (param $xw i32) (param $dw i32) (param $out i32)
    (local $end i32) (local $p i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $dw) (i32.const 2))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (local.set $p (i32.add (local.get $row) (i32.load (local.get $xw))))
        (i32.store (local.get $out)
          (i32.add
            (i32.mul (i32.load8_u (local.get $p)) (i32.load offset=4 (local.get $xw)))
            (i32.mul (i32.load8_u offset=1 (local.get $p)) (i32.load offset=8 (local.get $xw)))))
        (local.set $xw (i32.add (local.get $xw) (i32.const 12)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (br $next))))

  ;; One source row: the lookup table into $tmp ($sw bytes), then the horizontal pass, 8 columns
  ;; at a time where the plan allows ($nblk blocks of 64 bytes at $blk: i32 source offset, 12
  ;; bytes unused, a 16-byte i8x16.swizzle mask picking each column's two source bytes out of 16,
  ;; then the two weights of each column as i16 for i32x4.dot_i16x8_s), then $ntail columns the
  ;; scalar way ($xw as for hpass). Same sums as hpass: h = p0·a0 + p1·a1.
  (func (export "hrow") (param $data i32) (param $sw i32) (param $lut i32) (param $tmp i32)
      (param $blk i32) (param $nblk i32) (param $xw i32) (param $ntail i32) (param $out i32)
    (local $i i32) (local $end i32) (local $end4 i32) (local $q i64) (local $s v128)
    ;; four pixels per step (one 8-byte load, one 4-byte store), then the rest one by one
    (local.set $end4 (i32.and (local.get $sw) (i32.const -4)))
    (block $lut4_done
      (loop $lut4_next
        (br_if $lut4_done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $q (i64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 1)))))
        (i32.store (i32.add (local.get $tmp) (local.get $i))
          (i32.or
            (i32.or
              (i32.load8_u (i32.add (local.get $lut) (i32.wrap_i64 (i64.and (local.get $q) (i64.const 0xffff)))))
              (i32.shl (i32.load8_u (i32.add (local.get $lut) (i32.wrap_i64 (i64.and (i64.shr_u (local.get $q) (i64.const 16)) (i64.const 0xffff))))) (i32.const 8)))
            (i32.or
              (i32.shl (i32.load8_u (i32.add (local.get $lut) (i32.wrap_i64 (i64.and (i64.shr_u (local.get $q) (i64.const 32)) (i64.const 0xffff))))) (i32.const 16))
              (i32.shl (i32.load8_u (i32.add (local.get $lut) (i32.wrap_i64 (i64.shr_u (local.get $q) (i64.const 48))))) (i32.const 24)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $lut4_next)))
    (block $lut_done
      (loop $lut_next
        (br_if $lut_done (i32.ge_u (local.get $i) (local.get $sw)))
        (i32.store8
          (i32.add (local.get $tmp) (local.get $i))
          (i32.load8_u (i32.add (local.get $lut)
            (i32.load16_u (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $lut_next)))
    (local.set $end (i32.add (local.get $blk) (i32.shl (local.get $nblk) (i32.const 6))))
    (block $blk_done
      (loop $blk_next
        (br_if $blk_done (i32.ge_u (local.get $blk) (local.get $end)))
        (local.set $s (i8x16.swizzle
          (v128.load (i32.add (local.get $tmp) (i32.load (local.get $blk))))
          (v128.load offset=16 (local.get $blk))))
        (v128.store (local.get $out)
          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (local.get $s)) (v128.load offset=32 (local.get $blk))))
        (v128.store offset=16 (local.get $out)
          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (local.get $s)) (v128.load offset=48 (local.get $blk))))
        (local.set $blk (i32.add (local.get $blk) (i32.const 64)))
        (local.set $out (i32.add (local.get $out) (i32.const 32)))
        (br $blk_next)))
    (call $hpass (local.get $tmp) (local.get $xw) (local.get $ntail) (local.get $out)))

  (func $v1 (param $a i32) (param $b i32) (param $b0 i32) (param $b1 i32) (result f32)
    (f32.convert_i32_s
      (i32.shr_s
        (i32.add
          (i32.add
            (i32.shr_s (i32.mul (local.get $b0) (i32.shr_s (local.get $a) (i32.const 4))) (i32.const 16))
            (i32.shr_s (i32.mul (local.get $b1) (i32.shr_s (local.get $b) (i32.const 4))) (i32.const 16)))
          (i32.const 2))
        (i32.const 2))))

  ;; One destination row into up to three channel rows ($channels 1 or 3; $o1/$o2 ignored for 1).
  (func (export "vemit") (param $ra i32) (param $rb i32) (param $b0 i32) (param $b1 i32) (param $dw i32)
      (param $channels i32) (param $o0 i32) (param $o1 i32) (param $o2 i32)
      (param $s0 f32) (param $t0 f32) (param $s1 f32) (param $t1 f32) (param $s2 f32) (param $t2 f32)
    (local $i i32) (local $end4 i32) (local $end i32) (local $f v128) (local $x f32)
    (local $vb0 v128) (local $vb1 v128)
    (local $vs0 v128) (local $vt0 v128) (local $vs1 v128) (local $vt1 v128) (local $vs2 v128) (local $vt2 v128)
    (local.set $vb0 (i32x4.splat (local.get $b0)))
    (local.set $vb1 (i32x4.splat (local.get $b1)))
    (local.set $vs0 (f32x4.splat (local.get $s0)))
    (local.set $vt0 (f32x4.splat (local.get $t0)))
    (local.set $vs1 (f32x4.splat (local.get $s1)))
    (local.set $vt1 (f32x4.splat (local.get $t1)))
    (local.set $vs2 (f32x4.splat (local.get $s2)))
    (local.set $vt2 (f32x4.splat (local.get $t2)))
    (local.set $end (i32.shl (local.get $dw) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $f (f32x4.convert_i32x4_s (i32x4.shr_s
          (i32x4.add
            (i32x4.add
              (i32x4.shr_s (i32x4.mul (local.get $vb0) (i32x4.shr_s (v128.load (i32.add (local.get $ra) (local.get $i))) (i32.const 4))) (i32.const 16))
              (i32x4.shr_s (i32x4.mul (local.get $vb1) (i32x4.shr_s (v128.load (i32.add (local.get $rb) (local.get $i))) (i32.const 4))) (i32.const 16)))
            (v128.const i32x4 2 2 2 2))
          (i32.const 2))))
        (v128.store (i32.add (local.get $o0) (local.get $i))
          (f32x4.add (f32x4.mul (local.get $f) (local.get $vs0)) (local.get $vt0)))
        (if (i32.eq (local.get $channels) (i32.const 3))
          (then
            (v128.store (i32.add (local.get $o1) (local.get $i))
              (f32x4.add (f32x4.mul (local.get $f) (local.get $vs1)) (local.get $vt1)))
            (v128.store (i32.add (local.get $o2) (local.get $i))
              (f32x4.add (f32x4.mul (local.get $f) (local.get $vs2)) (local.get $vt2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $x (call $v1
          (i32.load (i32.add (local.get $ra) (local.get $i)))
          (i32.load (i32.add (local.get $rb) (local.get $i)))
          (local.get $b0) (local.get $b1)))
        (f32.store (i32.add (local.get $o0) (local.get $i))
          (f32.add (f32.mul (local.get $x) (local.get $s0)) (local.get $t0)))
        (if (i32.eq (local.get $channels) (i32.const 3))
          (then
            (f32.store (i32.add (local.get $o1) (local.get $i))
              (f32.add (f32.mul (local.get $x) (local.get $s1)) (local.get $t1)))
            (f32.store (i32.add (local.get $o2) (local.get $i))
              (f32.add (f32.mul (local.get $x) (local.get $s2)) (local.get $t2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))
)
