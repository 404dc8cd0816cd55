/* y (M, N) = x (M, K) @ W.T for a PackedWeight W (archlab/quant/packed.py), few rows of x.

Why C: at decode (M = 1..8) the matmul is memory-bound, and a packed weight is 4-8x fewer bytes
than float32, but torch has no CPU kernel that reads these layouts at that speed (the eager
dequantize-then-GEMM writes a float copy; _weight_int8pack_mm / _weight_int4pack_mm_for_cpu are
slower than float32 at SmolLM2's shapes, benchmarks/quant_matmul.py). This file is compiled once
per machine by archlab/quant/native.py (gcc -O3 -march=native -fopenmp, the compiler that
torch.compile's CPU backend needs too) and called through ctypes; without a compiler archlab
uses the dequantize path.

Per row n and block b of `block` columns: w = (q - offset) * scale[n, b] (+ min[n, b]), so
    y[m, n] = sum_b scale[n, b] * (x_b . q_nb - offset * sum(x_b)) + min[n, b] * sum(x_b).
The integers are widened to float in registers, block by block; the sums run in float32 in
another order than a GEMM's, so results match F.linear on the dequantized weight to float32
rounding, not bit for bit (tests/test_quant.py). Threads: OpenMP over rows, the runtime torch
itself loaded (libgomp), `threads` of them. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXM 16

/* GCC/Clang vector extensions: 16 floats, one AVX-512 register (two AVX2 ones elsewhere). The
   products accumulate lane-wise, one horizontal sum per row, not one per block. */
typedef float v16f __attribute__((vector_size(64)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef int8_t v16i8 __attribute__((vector_size(16)));
typedef int32_t v16i32 __attribute__((vector_size(64)));

/* bytes -> floats: GCC scalarizes __builtin_convertvector from bytes (and from int8 through
   int32 as well), so with AVX-512 the widening is spelled out (vpmov[sz]xbd, vcvtdq2ps) */
#if defined(__AVX512F__)
#include <immintrin.h>
static inline v16f u8tof(v16u8 v) {
    return (v16f)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32((__m128i)v));
}
static inline v16f i8tof(v16i8 v) {
    return (v16f)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32((__m128i)v));
}
#else
static inline v16f u8tof(v16u8 v) { return __builtin_convertvector(__builtin_convertvector(v, v16i32), v16f); }
static inline v16f i8tof(v16i8 v) { return __builtin_convertvector(__builtin_convertvector(v, v16i32), v16f); }
#endif

static inline v16f ldf(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float hsum(v16f v) {
    float s = 0.f;
    for (int i = 0; i < 16; ++i) s += v[i];
    return s;
}

/* sums of x over each block: xs (M, nb) */
static void block_sums(const float *x, int64_t M, int64_t K, int64_t block, float *xs) {
    int64_t nb = K / block;
    for (int64_t m = 0; m < M; ++m)
        for (int64_t b = 0; b < nb; ++b) {
            const float *xb = x + m * K + b * block;
            float s = 0.f;
            for (int64_t i = 0; i < block; ++i) s += xb[i];
            xs[m * nb + b] = s;
        }
}

/* the min and offset terms: sum_b (min[n, b] - offset * scale[n, b]) * sum(x_b) */
static inline float corrections(const float *sr, const float *mr, int64_t nb, int offset, const float *s) {
    float c = 0.f;
    if (mr)
        for (int64_t b = 0; b < nb; ++b) c += mr[b] * s[b];
    if (offset)
        for (int64_t b = 0; b < nb; ++b) c -= (float)offset * sr[b] * s[b];
    return c;
}

/* 4-bit: row bytes j hold column j (low nibble) and j + K/2 (high nibble); blocks do not
   straddle the halves (the caller checks (K/2) % block == 0). */
static inline void row_q4(const float *x, int64_t M, int64_t K, const uint8_t *qr, const float *sr,
                          const float *mr, int64_t block, int offset, const float *xs, float *out, int64_t N,
                          int64_t n) {
    int64_t half = K / 2, nb = K / block, hb = nb / 2;
    v16f acc[MAXM];
    for (int64_t m = 0; m < M; ++m) acc[m] = (v16f){0};
    for (int64_t b = 0; b < hb; ++b) {
        float sl = sr[b], sh = sr[b + hb];
        for (int64_t c = 0; c < block; c += 16) {
            v16u8 qv;
            memcpy(&qv, qr + b * block + c, 16);
            v16f lo = u8tof(qv & 15), hi = u8tof(qv >> 4);
            for (int64_t m = 0; m < M; ++m) {
                const float *xm = x + m * K + b * block + c;
                acc[m] += sl * (ldf(xm) * lo) + sh * (ldf(xm + half) * hi);
            }
        }
    }
    for (int64_t m = 0; m < M; ++m) out[m * N + n] = hsum(acc[m]) + corrections(sr, mr, nb, offset, xs + m * nb);
}

static inline void row_q8(const float *x, int64_t M, int64_t K, const int8_t *qr, const float *sr,
                          const float *mr, int64_t block, int offset, const float *xs, float *out, int64_t N,
                          int64_t n) {
    int64_t nb = K / block;
    v16f acc[MAXM];
    for (int64_t m = 0; m < M; ++m) acc[m] = (v16f){0};
    for (int64_t b = 0; b < nb; ++b) {
        float sc = sr[b];
        for (int64_t c = 0; c < block; c += 16) {
            v16i8 qv;
            memcpy(&qv, qr + b * block + c, 16);
            v16f w = i8tof(qv);
            for (int64_t m = 0; m < M; ++m) acc[m] += sc * (ldf(x + m * K + b * block + c) * w);
        }
    }
    for (int64_t m = 0; m < M; ++m) out[m * N + n] = hsum(acc[m]) + corrections(sr, mr, nb, offset, xs + m * nb);
}

/* one call per (bits, M == 1, block == 32) so that the compiler unrolls the common case */
#define ROWS(fn, T, MM, BLK)                                                                                  \
    _Pragma("omp parallel for schedule(static) num_threads(threads)") for (int64_t n = 0; n < N; ++n)       \
        fn(x, MM, K, (const T *)q + n * rb, scale + n * nb, mn ? mn + n * nb : 0, BLK, offset, xs, out, N, n)

/* Returns 0, or a negative code for shapes this kernel does not take (the caller falls back). */
int archlab_gemv(int bits, const float *x, int64_t M, int64_t K, const void *q, const float *scale,
                 const float *mn, int64_t N, int64_t nb, int offset, float *out, int threads) {
    if (M < 1 || M > MAXM || nb < 1 || K % nb) return -1;
    int64_t block = K / nb;
    if (block > 256 || block % 16) return -2; /* per-channel scales: the caller repeats them per 64 columns */
    if (bits == 4 && (nb % 2 || (K / 2) % block)) return -3;
    if (bits != 4 && bits != 8) return -4;
    float *xs = (float *)malloc(sizeof(float) * M * nb);
    if (!xs) return -5;
    block_sums(x, M, K, block, xs);
    int64_t rb = bits == 4 ? K / 2 : K; /* bytes per row */
    if (bits == 4) {
        if (M == 1 && block == 32) { ROWS(row_q4, uint8_t, 1, 32); }
        else if (block == 32) { ROWS(row_q4, uint8_t, M, 32); }
        else { ROWS(row_q4, uint8_t, M, block); }
    } else {
        if (M == 1 && block == 32) { ROWS(row_q8, int8_t, 1, 32); }
        else if (block == 32) { ROWS(row_q8, int8_t, M, 32); }
        else { ROWS(row_q8, int8_t, M, block); }
    }
    free(xs);
    return 0;
}
