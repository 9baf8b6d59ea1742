;; The TIFF block decoders in WebAssembly: the LZW decoder (`lzw`) and the horizontal predictor
;; (`unpredict16`). Source of src/decode/kernel-wasm.ts (scripts/build-wasm.mjs assembles it with
;; wabt; a test checks the two agree). Same results as the JavaScript in codecs.ts and tiff.ts.
(module
  (memory (export "memory") 1)

  ;; TIFF horizontal predictor (2) undone on 16-bit samples, in place: each row becomes its running
  ;; sum mod 2^16. Eight samples at a time: a prefix sum within the vector (add the vector shifted
  ;; by 1, 2 and 4 lanes), plus the running total so far (the last lane, broadcast); then the
  ;; rest of the row one by one. $p: the first row, $rows rows of $width samples back to back.
  (func (export "unpredict16") (param $p i32) (param $width i32) (param $rows i32)
    (local $row i32) (local $end8 i32) (local $end i32) (local $x v128) (local $carry v128) (local $acc i32)
    (block $rows_done
      (loop $next_row
        (br_if $rows_done (i32.eqz (local.get $rows)))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $width) (i32.const 1))))
        (local.set $end8 (i32.add (local.get $p) (i32.shl (i32.and (local.get $width) (i32.const -8)) (i32.const 1))))
        (local.set $carry (v128.const i64x2 0 0))
        (block $simd_done
          (loop $simd
            (br_if $simd_done (i32.ge_u (local.get $p) (local.get $end8)))
            (local.set $x (v128.load (local.get $p)))
            (local.set $x (i16x8.add (local.get $x)
              (i8x16.shuffle 16 17 0 1 2 3 4 5 6 7 8 9 10 11 12 13 (local.get $x) (v128.const i64x2 0 0))))
            (local.set $x (i16x8.add (local.get $x)
              (i8x16.shuffle 16 17 18 19 0 1 2 3 4 5 6 7 8 9 10 11 (local.get $x) (v128.const i64x2 0 0))))
            (local.set $x (i16x8.add (local.get $x)
              (i8x16.shuffle 16 17 18 19 20 21 22 23 0 1 2 3 4 5 6 7 (local.get $x) (v128.const i64x2 0 0))))
            (local.set $x (i16x8.add (local.get $x) (local.get $carry)))
            (v128.store (local.get $p) (local.get $x))
            (local.set $carry (i8x16.shuffle 14 15 14 15 14 15 14 15 14 15 14 15 14 15 14 15 (local.get $x) (local.get $x)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $simd)))
        (local.set $acc (i16x8.extract_lane_u 0 (local.get $carry)))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_u (local.get $p) (local.get $end)))
            (local.set $acc (i32.add (local.get $acc) (i32.load16_u (local.get $p))))
            (i32.store16 (local.get $p) (local.get $acc))
            (local.set $p (i32.add (local.get $p) (i32.const 2)))
            (br $tail)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $next_row))))

  ;; TIFF LZW (MSB-first 9–12-bit codes, early change), as lzwDecode in src/decode/codecs.ts.
  ;; The string table is at address 0 (i64 entries, 4097 of them, the last a spare): a string of
  ;; up to 7 bytes is held inline (its bytes, the first at the bottom, the length in the top
  ;; byte), so that the common short string is one 8-byte store and never a read of output just
  ;; written; a longer one as i32 address | length << 32 | 1 << 63, copied out of the output 8
  ;; bytes at a time (byte by byte where it overlaps itself). The entry a code adds is built from
  ;; the previous entry (locals: $oe, and $ol8 = its length · 8) and this string's first byte, and
  ;; stored without a branch: right after a Clear into slot 257 (never looked up); the code that
  ;; fills slot 4095 stores into the spare slot 4096 as well, and any code after it is refused. Codes are read straight from the block reversed into $rev
  ;; (n bytes, 16 of room before it; up to 15 bytes past the block are read): one i64 load and
  ;; one shift per code, no bit buffer to refill. Stores run up to 7 bytes past a string and the
  ;; last string is not cut at $cap, so up to 4096 + 7 bytes past $cap are written: the caller
  ;; leaves room. Returns the bytes written, or −1 (a code before any string was defined), −2
  ;; (a code beyond the table) or −3 (a code after the table is full, without a Clear first). The variants measured are in
  ;; the git history of docs/performance.md.
  (func (export "lzw") (param $src i32) (param $n i32) (param $out i32) (param $cap i32) (param $rev i32) (result i32)
    (local $next i32) (local $width i32) (local $mask i32) (local $p i32) (local $pend i32)
    (local $bits i32) (local $code i32) (local $len i32) (local $i i32) (local $nb i32) (local $rend i32)
    (local $entry i64) (local $oe i64) (local $ol8 i32) (local $c i64) (local $from i32) (local $to i32) (local $end i32)
    (block $lit_done
      (loop $lit
        (br_if $lit_done (i32.ge_u (local.get $code) (i32.const 256)))
        (i64.store (i32.shl (local.get $code) (i32.const 3))
          (i64.or (i64.extend_i32_u (local.get $code)) (i64.const 0x100000000000000)))
        (local.set $code (i32.add (local.get $code) (i32.const 1)))
        (br $lit)))
    (local.set $oe (i64.const 0x100000000000000))
    (local.set $ol8 (i32.const 8))
    ;; the block reversed at $rev: an i64 load at $rev + n − 8 − k gives bytes k..k+7, most
    ;; significant first
    (block $rdone
      (loop $rloop
        (br_if $rdone (i32.ge_u (local.get $i) (local.get $n)))
        (v128.store (i32.sub (i32.add (local.get $rev) (local.get $n)) (i32.add (local.get $i) (i32.const 16)))
          (i8x16.swizzle (v128.load (i32.add (local.get $src) (local.get $i)))
            (v128.const i8x16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $rloop)))
    (local.set $rend (i32.sub (i32.add (local.get $rev) (local.get $n)) (i32.const 8)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 3)))
    (local.set $p (local.get $out))
    (local.set $pend (i32.add (local.get $out) (local.get $cap)))
    (local.set $next (i32.const 257))
    (local.set $width (i32.const 9))
    (local.set $mask (i32.const 511))
    (block $exit
      (loop $main
        (br_if $exit (i32.ge_u (local.get $p) (local.get $pend)))
        (if (i32.gt_u (i32.add (local.get $bits) (local.get $width)) (local.get $nb))
          (then (return (i32.sub (local.get $p) (local.get $out)))))
        (local.set $code (i32.and
          (i32.wrap_i64 (i64.shr_u
            (i64.load (i32.sub (local.get $rend) (i32.shr_u (local.get $bits) (i32.const 3))))
            (i64.extend_i32_u (i32.sub (i32.sub (i32.const 64) (local.get $width)) (i32.and (local.get $bits) (i32.const 7))))))
          (local.get $mask)))
        (local.set $bits (i32.add (local.get $bits) (local.get $width)))
        ;; 256 Clear, 257 end, anything past the next free code: the rare ways out of the fast path
        (if (i32.lt_u (i32.sub (local.get $code) (i32.const 256)) (i32.const 2))
          (then
            (br_if $exit (i32.eq (local.get $code) (i32.const 257)))
            (local.set $next (i32.const 257))
            (local.set $width (i32.const 9))
            (local.set $mask (i32.const 511))
            (br $main)))
        ;; past the next free code, or a string right after a Clear: corrupt; any code once the
        ;; table is full: corrupt (a Clear must come first)
        (if (i32.gt_u (local.get $code) (i32.sub (local.get $next) (i32.eq (local.get $next) (i32.const 257))))
          (then (return (select (i32.const -1) (i32.const -2) (i32.eq (local.get $next) (i32.const 257))))))
        (if (i32.eq (local.get $next) (i32.const 4096))
          (then (return (i32.const -3))))
        (local.set $entry (i64.load (i32.shl (local.get $code) (i32.const 3))))
        (if (i32.eq (local.get $code) (local.get $next))
          (then  ;; the string the previous one is about to add: itself and its own first byte
            (local.set $entry
              (if (result i64) (i32.lt_u (local.get $ol8) (i32.const 56))
                (then (i64.add (i64.add (local.get $oe)
                  (i64.shl (i64.and (local.get $oe) (i64.const 0xff)) (i64.extend_i32_u (local.get $ol8))))
                  (i64.const 0x100000000000000)))
                (else (i64.or (i64.or
                  (i64.extend_i32_u (i32.sub (local.get $p) (i32.shr_u (local.get $ol8) (i32.const 3))))
                  (i64.shl (i64.extend_i32_u (i32.add (i32.shr_u (local.get $ol8) (i32.const 3)) (i32.const 1))) (i64.const 32)))
                  (i64.const 0x8000000000000000)))))))
        (if (i64.ge_s (local.get $entry) (i64.const 0))
          (then
            (i64.store (local.get $p) (local.get $entry))
            (local.set $len (i32.wrap_i64 (i64.shr_u (local.get $entry) (i64.const 56))))
            (local.set $c (i64.and (local.get $entry) (i64.const 0xff))))
          (else
            (local.set $from (i32.wrap_i64 (local.get $entry)))
            (local.set $to (local.get $p))
            (local.set $len (i32.and (i32.wrap_i64 (i64.shr_u (local.get $entry) (i64.const 32))) (i32.const 0xffff)))
            (local.set $c (i64.load8_u (local.get $from)))
            (local.set $end (i32.add (local.get $to) (local.get $len)))
            (if (i32.ge_u (i32.sub (local.get $to) (local.get $from)) (i32.const 8))
              (then
                (loop $copy8
                  (i64.store (local.get $to) (i64.load (local.get $from)))
                  (local.set $from (i32.add (local.get $from) (i32.const 8)))
                  (local.set $to (i32.add (local.get $to) (i32.const 8)))
                  (br_if $copy8 (i32.lt_u (local.get $to) (local.get $end)))))
              (else
                (loop $copy1
                  (i32.store8 (local.get $to) (i32.load8_u (local.get $from)))
                  (local.set $from (i32.add (local.get $from) (i32.const 1)))
                  (local.set $to (i32.add (local.get $to) (i32.const 1)))
                  (br_if $copy1 (i32.lt_u (local.get $to) (local.get $end))))))))
        ;; the entry the previous string adds (slot 257 right after a Clear; slot 4096, spare, once
        ;; full); the previous string started $ol8 / 8 bytes before $p
        (i64.store (i32.shl (local.get $next) (i32.const 3))
          (if (result i64) (i32.lt_u (local.get $ol8) (i32.const 56))
            (then (i64.add (i64.add (local.get $oe) (i64.shl (local.get $c) (i64.extend_i32_u (local.get $ol8))))
              (i64.const 0x100000000000000)))
            (else (i64.or (i64.or
              (i64.extend_i32_u (i32.sub (local.get $p) (i32.shr_u (local.get $ol8) (i32.const 3))))
              (i64.shl (i64.extend_i32_u (i32.add (i32.shr_u (local.get $ol8) (i32.const 3)) (i32.const 1))) (i64.const 32)))
              (i64.const 0x8000000000000000)))))
        (local.set $next (i32.add (local.get $next) (i32.lt_u (local.get $next) (i32.const 4096))))
        (local.set $oe (local.get $entry))
        (local.set $ol8 (i32.shl (local.get $len) (i32.const 3)))
        (local.set $p (i32.add (local.get $p) (local.get $len)))
        (if (i32.eq (local.get $next) (local.get $mask))
          (then
            (if (i32.lt_u (local.get $width) (i32.const 12))
              (then
                (local.set $width (i32.add (local.get $width) (i32.const 1)))
                (local.set $mask (i32.sub (i32.shl (i32.const 1) (local.get $width)) (i32.const 1)))))))
        (br $main)))
    (local.set $len (i32.sub (local.get $p) (local.get $out)))
    (select (local.get $cap) (local.get $len) (i32.gt_u (local.get $len) (local.get $cap))))
)
