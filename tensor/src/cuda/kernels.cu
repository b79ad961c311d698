// The CUDA kernels of the MCLRec tensor backend, compiled at run time with NVRTC (once per
// device, see mod.rs) so that building with `--features cuda` needs no CUDA toolkit.
//
// Every kernel is a template over the element type and is exported twice, with the suffixes
// `_f32` and `_f64`, by the INSTANTIATE macros at the end. Each one mirrors a CPU function in
// tensor/src/cpu/ and keeps its order of operations where that decides rounding (softmax,
// layer norm, Adam), so that results agree to ~1e-6 relative in f32.
//
// Sizes and offsets are `unsigned long long` (Rust u64); flags and op codes are `int`.

typedef unsigned long long u64;
typedef unsigned int u32;

// Overloads so that one template body serves float and double (NVRTC has no <cmath>).
__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }
__device__ __forceinline__ float d_log(float x) { return logf(x); }
__device__ __forceinline__ double d_log(double x) { return log(x); }
__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float d_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double d_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float d_erf(float x) { return erff(x); }
__device__ __forceinline__ double d_erf(double x) { return erf(x); }
__device__ __forceinline__ float d_erfc(float x) { return erfcf(x); }
__device__ __forceinline__ double d_erfc(double x) { return erfc(x); }
__device__ __forceinline__ float d_pow(float x, float c) { return powf(x, c); }
__device__ __forceinline__ double d_pow(double x, double c) { return pow(x, c); }
__device__ __forceinline__ float d_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double d_abs(double x) { return fabs(x); }
// Rust's f32::max/min: the non-NaN operand when one is NaN (fmax/fmin do the same).
__device__ __forceinline__ float d_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double d_max(double a, double b) { return fmax(a, b); }
__device__ __forceinline__ float d_min(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double d_min(double a, double b) { return fmin(a, b); }
__device__ __forceinline__ float d_inf(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double d_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }

#define GRID_STRIDE(i, n) \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)blockDim.x * gridDim.x)

// Row kernels run one block of ROW_THREADS threads per row.
#define ROW_THREADS 256

// ------------------------------------------------------------------ elementwise

// The elementwise functions of `UnaryOp` (tensor/src/unary_op.rs, where each is defined
// in Rust), one line each: its name, its value at `v` (scalar operand `c`) and its
// derivative at `v` given the value `y`. Exported as unary_<name>_<S> and
// unary_backward_<name>_<S> at the end; tensor/tests/kernel_names.rs checks that every
// name the backend loads is here.
#define INV_SQRT2 (T)0.70710678118654752440
#define UNARY_OPS(X)                                                                       \
    X(neg, -v, (T)-1)                                                                      \
    X(exp, d_exp(v), y)                                                                    \
    X(ln, d_log(v), (T)1 / v)                                                              \
    X(sqrt, d_sqrt(v), (T)0.5 / y)                                                         \
    X(tanh, d_tanh(v), (T)1 - y * y)                                                       \
    X(erf, d_erf(v), (T)1.12837916709551257390 * d_exp(-v * v))                            \
    X(sigmoid, v >= (T)0 ? (T)1 / ((T)1 + d_exp(-v)) : d_exp(v) / ((T)1 + d_exp(v)),       \
      y * ((T)1 - y))                                                                      \
    /* x/2 erfc(-x/sqrt 2), as unary_op::gelu (accurate for very negative x) */            \
    X(gelu, (T)0.5 * v * d_erfc(-v * INV_SQRT2),                                           \
      (T)0.5 * d_erfc(-v * INV_SQRT2) + v * (d_exp((T)-0.5 * v * v) * (T)0.3989422804014327)) \
    X(relu, d_max(v, (T)0), v > (T)0 ? (T)1 : (T)0)                                        \
    X(recip, (T)1 / v, -(y * y))                                                           \
    X(square, v * v, v + v)                                                                \
    X(abs, d_abs(v), v > (T)0 ? (T)1 : (v < (T)0 ? (T)-1 : (T)0))                          \
    X(add_scalar, v + c, (T)1)                                                             \
    X(mul_scalar, v * c, c)                                                                \
    X(clamp_min, d_max(v, c), v > c ? (T)1 : (T)0)                                         \
    X(clamp_max, d_min(v, c), v < c ? (T)1 : (T)0)                                         \
    X(gt_scalar, v > c ? (T)1 : (T)0, (T)0)                                                \
    X(powf, d_pow(v, c), c * d_pow(v, c - (T)1))

#define UNARY_FUNCTIONS(NAME, VALUE, DERIVATIVE)                                           \
    template <typename T>                                                                  \
    __device__ __forceinline__ T NAME##_value(T v, T c) { return VALUE; }                 \
    template <typename T>                                                                  \
    __device__ __forceinline__ T NAME##_derivative(T v, T y, T c) { return DERIVATIVE; }
UNARY_OPS(UNARY_FUNCTIONS)

// The functions of `BinaryOp` (tensor/src/binary_op.rs): name and value at `a`, `b`,
// each a functor that the `binary` template is instantiated with; exported as
// binary_<name>_<S> at the end.
#define BINARY_OPS(X)                                                                      \
    X(add, a + b)                                                                          \
    X(sub, a - b)                                                                          \
    X(mul, a * b)                                                                          \
    X(div, a / b)                                                                          \
    X(max, d_max(a, b))                                                                    \
    X(min, d_min(a, b))

#define BINARY_FUNCTOR(NAME, VALUE)                                                        \
    struct NAME##_op {                                                                     \
        template <typename T>                                                              \
        __device__ __forceinline__ T operator()(T a, T b) const { return VALUE; }          \
    };
BINARY_OPS(BINARY_FUNCTOR)

// The offset into a broadcast operand of output element i. meta holds the output dims, then
// one stride array per operand (0 along broadcast axes).
__device__ __forceinline__ u64 bcast_offset(u64 i, const u64* dims, const u64* strides, int rank) {
    u64 off = 0;
    for (int d = rank - 1; d >= 0; --d) {
        u64 c = i % dims[d];
        i /= dims[d];
        off += c * strides[d];
    }
    return off;
}

// a_len / b_len: the operand repeats every a_len (b_len) elements (the common same-shape and
// bias-row cases, no index arithmetic); 0 means "use meta".
template <typename T, typename Op>
__device__ void binary(const T* a, const T* b, T* y, u64 n, u64 a_len, u64 b_len,
                       const u64* meta, int rank) {
    GRID_STRIDE(i, n) {
        u64 ia = a_len ? i % a_len : bcast_offset(i, meta, meta + rank, rank);
        u64 ib = b_len ? i % b_len : bcast_offset(i, meta, meta + 2 * rank, rank);
        y[i] = Op()(a[ia], b[ib]);
    }
}

// y[i] = x[base + offset(i)]: broadcast_to, permute and narrow in one kernel.
template <typename T>
__device__ void strided_copy(const T* x, T* y, u64 n, const u64* meta, int rank, u64 base) {
    GRID_STRIDE(i, n) { y[i] = x[base + bcast_offset(i, meta, meta + rank, rank)]; }
}

template <typename T>
__device__ void masked_fill(const T* x, const T* mask, T* y, u64 n, const u64* meta, int rank,
                            T value) {
    GRID_STRIDE(i, n) {
        T k = mask[bcast_offset(i, meta, meta + rank, rank)];
        y[i] = k != (T)0 ? value : x[i];
    }
}

// The counter-based hash of dropout_mask.rs, bit for bit: keep/drop decisions equal the CPU's.
__device__ __forceinline__ u32 fmix32(u32 h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

template <typename T>
__device__ void dropout(const T* x, T* y, u64 n, u32 seed_lo, u32 seed_hi, u32 threshold, T scale) {
    GRID_STRIDE(i, n) {
        u32 draw = fmix32(fmix32((u32)i ^ seed_lo) ^ seed_hi);
        y[i] = x[i] * (draw >= threshold ? scale : (T)0);
    }
}

// PyTorch-semantics Adam, in the order of kernels::scalar::adam (constants from the host).
template <typename T>
__device__ void adam(T* p, const T* g, T* m, T* v, u64 n, T b1, T b2, T b1c, T b2c, T wd,
                     T step_size, T inv_sqrt_bc2, T eps) {
    GRID_STRIDE(i, n) {
        T gi = g[i] + wd * p[i];
        T mi = b1 * m[i] + b1c * gi;
        T vi = b2 * v[i] + b2c * gi * gi;
        m[i] = mi;
        v[i] = vi;
        T denom = d_sqrt(vi) * inv_sqrt_bc2 + eps;
        p[i] -= step_size * mi / denom;
    }
}

// ------------------------------------------------------------------ reductions

// x seen as [outer, len, inner]; one thread per output, a serial loop along the axis in the
// CPU's order. Op codes: the order of `ReduceOp`.
template <typename T>
__device__ void reduce(const T* x, T* y, u64 outer, u64 len, u64 inner, int op) {
    GRID_STRIDE(t, outer * inner) {
        u64 o = t / inner, i = t % inner;
        const T* p = x + o * len * inner + i;
        T acc = op == 2 ? -d_inf((T)0) : (op == 3 ? d_inf((T)0) : (T)0);
        for (u64 j = 0; j < len; ++j) {
            T v = p[j * inner];
            acc = op <= 1 ? acc + v : (op == 2 ? d_max(acc, v) : d_min(acc, v));
        }
        if (op == 1) acc *= (T)1 / (T)len;
        y[t] = acc;
    }
}

// The first pass of a reduction over a long axis with few outputs (a bias gradient: 12,800
// rows, 64 columns): x seen as [outer, len, inner], rows cut into chunks of `chunk`, one
// thread per (output, chunk) writing partial[o, c, i]; `reduce` over the chunks finishes.
// Op codes as `reduce`, Mean passed as Sum (the caller scales).
template <typename T>
__device__ void reduce_partial(const T* x, T* partial, u64 outer, u64 len, u64 inner, u64 chunk, int op) {
    u64 chunks = (len + chunk - 1) / chunk;
    GRID_STRIDE(t, outer * chunks * inner) {
        u64 i = t % inner, c = (t / inner) % chunks, o = t / (inner * chunks);
        const T* p = x + o * len * inner + i;
        T acc = op == 2 ? -d_inf((T)0) : (op == 3 ? d_inf((T)0) : (T)0);
        u64 end = (c + 1) * chunk < len ? (c + 1) * chunk : len;
        for (u64 j = c * chunk; j < end; ++j) {
            T v = p[j * inner];
            acc = op <= 1 ? acc + v : (op == 2 ? d_max(acc, v) : d_min(acc, v));
        }
        partial[t] = acc;
    }
}

// Max (is_max = 1) or min with the index of the first best element.
template <typename T>
__device__ void arg_reduce(const T* x, T* y, u64* idx, u64 outer, u64 len, u64 inner, int is_max) {
    GRID_STRIDE(t, outer * inner) {
        u64 o = t / inner, i = t % inner;
        const T* p = x + o * len * inner + i;
        T best = p[0];
        u64 bi = 0;
        for (u64 j = 1; j < len; ++j) {
            T v = p[j * inner];
            if ((is_max && v > best) || (!is_max && v < best)) {
                best = v;
                bi = j;
            }
        }
        y[t] = best;
        idx[t] = bi;
    }
}

// Block-wide sum / max of one value per thread (ROW_THREADS threads), result in every thread.
template <typename T>
__device__ T block_sum(T v, T* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = ROW_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    T r = buf[0];
    __syncthreads();
    return r;
}

template <typename T>
__device__ T block_max(T v, T* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = ROW_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] = d_max(buf[threadIdx.x], buf[threadIdx.x + s]);
        __syncthreads();
    }
    T r = buf[0];
    __syncthreads();
    return r;
}

// ------------------------------------------------------------------ normalisation

// One block per row: max, then sum of exp(x - max), then the outputs (softmax_row /
// log_softmax_row of kernels::scalar).
template <typename T>
__device__ void softmax_rows(const T* x, T* y, u64 rows, u64 n, int log_out) {
    __shared__ T buf[ROW_THREADS];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        T m = -d_inf((T)0);
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) m = d_max(m, xr[j]);
        m = block_max(m, buf);
        T s = 0;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) s += d_exp(xr[j] - m);
        s = block_sum(s, buf);
        if (log_out) {
            T ls = d_log(s);
            for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) yr[j] = (xr[j] - m) - ls;
        } else {
            T inv = (T)1 / s;
            for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) yr[j] = d_exp(xr[j] - m) * inv;
        }
    }
}

// One block per row: mean, then the centred variance (two passes, as layer_norm_row).
template <typename T>
__device__ void layer_norm(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd,
                           u64 rows, u64 n, T eps) {
    __shared__ T buf[ROW_THREADS];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T s = 0;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) s += xr[j];
        T mu = block_sum(s, buf) / (T)n;
        T q = 0;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) q += (xr[j] - mu) * (xr[j] - mu);
        T var = block_sum(q, buf) / (T)n;
        T rs = (T)1 / d_sqrt(var + eps);
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS)
            y[r * n + j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
        if (threadIdx.x == 0) {
            mean[r] = mu;
            rstd[r] = rs;
        }
    }
}

// dx of layer norm, one block per row (the formula of cpu/normalise.rs).
template <typename T>
__device__ void layer_norm_bwd_dx(const T* x, const T* gamma, const T* mean, const T* rstd,
                                  const T* g, T* dx, u64 rows, u64 n) {
    __shared__ T buf[ROW_THREADS];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        const T* gr = g + r * n;
        T m = mean[r], s = rstd[r];
        T mh = 0, mhx = 0;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) {
            T xh = (xr[j] - m) * s;
            T h = gr[j] * gamma[j];
            mh += h;
            mhx += h * xh;
        }
        T inv_n = (T)1 / (T)n;
        mh = block_sum(mh, buf) * inv_n;
        mhx = block_sum(mhx, buf) * inv_n;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) {
            T xh = (xr[j] - m) * s;
            dx[r * n + j] = s * (gr[j] * gamma[j] - mh - xh * mhx);
        }
    }
}

// dgamma and dbeta, first pass: rows cut into chunks of `chunk`, one thread per (chunk,
// column) summing its rows in order into dgamma_part / dbeta_part [chunks, n]; the caller
// sums the chunks with `reduce` (deterministic, and enough threads for 64 columns).
template <typename T>
__device__ void layer_norm_bwd_params(const T* x, const T* mean, const T* rstd, const T* g,
                                      T* dgamma_part, T* dbeta_part, u64 rows, u64 n, u64 chunk) {
    u64 chunks = (rows + chunk - 1) / chunk;
    GRID_STRIDE(t, chunks * n) {
        u64 j = t % n, c = t / n;
        u64 end = (c + 1) * chunk < rows ? (c + 1) * chunk : rows;
        T dg = 0, db = 0;
        for (u64 r = c * chunk; r < end; ++r) {
            T xh = (x[r * n + j] - mean[r]) * rstd[r];
            dg += g[r * n + j] * xh;
            db += g[r * n + j];
        }
        dgamma_part[t] = dg;
        dbeta_part[t] = db;
    }
}

// ------------------------------------------------------------------ indexing

// x seen as [outer, len, inner], y as [outer, k, inner]: y[o, j, i] = x[o, idx[j], i]
// (index_select; gather_rows is the case outer = 1). per_elem: idx has one entry per output
// element (torch.gather) instead of one per j.
template <typename T>
__device__ void index_select(const T* x, const u64* idx, T* y, u64 outer, u64 len, u64 k,
                             u64 inner, int per_elem) {
    GRID_STRIDE(p, outer * k * inner) {
        u64 i = p % inner, j = (p / inner) % k, o = p / (inner * k);
        u64 src = per_elem ? idx[p] : idx[j];
        y[p] = x[(o * len + src) * inner + i];
    }
}

// The adjoint: out[o, idx[..], i] += src[o, j, i], with atomics (rows may repeat).
template <typename T>
__device__ void index_add(const T* src, const u64* idx, T* out, u64 outer, u64 len, u64 k,
                          u64 inner, int per_elem) {
    GRID_STRIDE(p, outer * k * inner) {
        u64 i = p % inner, j = (p / inner) % k, o = p / (inner * k);
        u64 dst = per_elem ? idx[p] : idx[j];
        atomicAdd(out + (o * len + dst) * inner + i, src[p]);
    }
}

// One input of a concat: rows of src_row elements into rows of dst_row at column dst_off.
template <typename T>
__device__ void concat_block(const T* src, T* dst, u64 outer, u64 src_row, u64 dst_row, u64 dst_off) {
    GRID_STRIDE(p, outer * src_row) {
        u64 o = p / src_row, j = p % src_row;
        dst[o * dst_row + dst_off + j] = src[p];
    }
}

// Per-row top k, one block per row: k rounds of a block-wide arg-max over the entries that
// come after the previous pick in the order (value descending, index ascending), which is the
// CPU heap's order, so no entry needs marking.
// One block per row: how many entries of row r exceed x[r, cols[r]] (evaluation ranks).
template <typename T>
__device__ void count_greater(const T* x, const u64* cols, u64* counts, u64 rows, u64 n) {
    __shared__ u64 part[ROW_THREADS];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        const T t = xr[cols[r]];
        u64 c = 0;
        for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) c += xr[j] > t ? 1 : 0;
        part[threadIdx.x] = c;
        __syncthreads();
        for (int s = ROW_THREADS / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
            __syncthreads();
        }
        if (threadIdx.x == 0) counts[r] = part[0];
        __syncthreads();  // part is reused by the next row
    }
}

template <typename T>
__device__ void topk_rows(const T* x, T* vals, u64* idx, u64 rows, u64 n, u64 k) {
    __shared__ T bv[ROW_THREADS];
    __shared__ u64 bi[ROW_THREADS];
    const u64 NONE = ~0ull;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T last_v = d_inf((T)0);
        u64 last_i = NONE;
        for (u64 t = 0; t < k; ++t) {
            T best = 0;
            u64 besti = NONE;
            for (u64 j = threadIdx.x; j < n; j += ROW_THREADS) {
                T v = xr[j];
                bool after = last_i == NONE || v < last_v || (v == last_v && j > last_i);
                bool better = besti == NONE || v > best || (v == best && j < besti);
                if (after && better) {
                    best = v;
                    besti = j;
                }
            }
            bv[threadIdx.x] = best;
            bi[threadIdx.x] = besti;
            __syncthreads();
            for (int s = ROW_THREADS / 2; s > 0; s >>= 1) {
                if (threadIdx.x < s) {
                    T ov = bv[threadIdx.x + s];
                    u64 oi = bi[threadIdx.x + s];
                    u64 mi = bi[threadIdx.x];
                    if (oi != NONE && (mi == NONE || ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < mi))) {
                        bv[threadIdx.x] = ov;
                        bi[threadIdx.x] = oi;
                    }
                }
                __syncthreads();
            }
            last_v = bv[0];
            last_i = bi[0];
            if (threadIdx.x == 0) {
                vals[r * k + t] = last_v;
                idx[r * k + t] = last_i;
            }
            __syncthreads();
        }
    }
}

// ------------------------------------------------------------------ attention

// Fused causal attention over packed sequences (cpu/attention.rs): one block per
// (sequence, head), one thread per query row in the forward. seqs holds five numbers per
// sequence: first key row, length, number of queries, first query row, offset of its
// probabilities. blocked[t] marks row t as a padding key (additive -10000). Each thread
// keeps the CPU's order of every sum, so the results match it to rounding.

__device__ __forceinline__ bool drop_keep(u64 i, u32 lo, u32 hi, u32 threshold) {
    return fmix32(fmix32((u32)i ^ lo) ^ hi) >= threshold;
}

template <typename T>
__device__ void attention_fwd(const T* q, const T* kv, T* ctx, T* probs, const u64* seqs,
                              const u32* blocked, u64 d, u64 heads, T scale, int dropout,
                              u32 lo, u32 hi, u32 threshold, T drop_scale, int causal) {
    const u64* sq = seqs + 5 * blockIdx.x;
    u64 key_row = sq[0], len = sq[1], queries = sq[2], q_row = sq[3], prob = sq[4];
    u64 h = blockIdx.y, dh = d / heads;
    for (u64 i = threadIdx.x; i < queries; i += blockDim.x) {
        // Causal: keys up to the query's position; bidirectional: all of its sequence.
        u64 n = causal ? len - queries + i + 1 : len;
        const T* qr = q + (q_row + i) * d + h * dh;
        u64 p_at = (h * queries + i) * len;
        // The raw scores go where the probabilities will be, then softmax in place.
        T* p = probs + prob + p_at;
        for (u64 j = 0; j < n; ++j) {
            const T* kr = kv + (key_row + j) * 2 * d + h * dh;
            T s = 0;
            for (u64 c = 0; c < dh; ++c) s += (qr[c] * scale) * kr[c];
            if (blocked[key_row + j]) s += (T)-10000.0;
            p[j] = s;
        }
        T m = -d_inf((T)0);
        for (u64 j = 0; j < n; ++j) m = d_max(m, p[j]);
        T sum = 0;
        for (u64 j = 0; j < n; ++j) {
            p[j] = d_exp(p[j] - m);
            sum += p[j];
        }
        T inv = (T)1 / sum;
        for (u64 j = 0; j < n; ++j) p[j] *= inv;
        T* out = ctx + (q_row + i) * d + h * dh;
        for (u64 c = 0; c < dh; ++c) out[c] = 0;
        for (u64 j = 0; j < n; ++j) {
            T w = p[j];
            if (dropout) w *= drop_keep(prob + p_at + j, lo, hi, threshold) ? drop_scale : (T)0;
            const T* vr = kv + (key_row + j) * 2 * d + d + h * dh;
            for (u64 c = 0; c < dh; ++c) out[c] += w * vr[c];
        }
    }
}

// Backward in two passes per (sequence, head). Pass 1, a thread per query: dp (the gradient
// of the dropped probabilities, kept in `dp`, laid out as `probs`), the softmax dot product
// (kept in `dots`, one per query row and head) and the query's dq row. Pass 2, a thread per
// key: its dk and dv rows, summed over the queries in increasing order as on the CPU, so no
// atomics are needed.
template <typename T>
__device__ void attention_bwd(const T* g, const T* q, const T* kv, const T* probs, T* dq, T* dkv,
                              T* dp, T* dots, const u64* seqs, u64 d, u64 heads, T scale,
                              int dropout, u32 lo, u32 hi, u32 threshold, T drop_scale,
                              int causal) {
    const u64* sq = seqs + 5 * blockIdx.x;
    u64 key_row = sq[0], len = sq[1], queries = sq[2], q_row = sq[3], prob = sq[4];
    u64 h = blockIdx.y, dh = d / heads;
    for (u64 i = threadIdx.x; i < queries; i += blockDim.x) {
        // Causal: keys up to the query's position; bidirectional: all of its sequence.
        u64 n = causal ? len - queries + i + 1 : len;
        const T* gr = g + (q_row + i) * d + h * dh;
        u64 p_at = prob + (h * queries + i) * len;
        T dot = 0;
        for (u64 j = 0; j < n; ++j) {
            const T* vr = kv + (key_row + j) * 2 * d + d + h * dh;
            T s = 0;
            for (u64 c = 0; c < dh; ++c) s += gr[c] * vr[c];
            T m = dropout ? (drop_keep(p_at + j, lo, hi, threshold) ? drop_scale : (T)0) : (T)1;
            s *= m;
            dp[p_at + j] = s;
            dot += probs[p_at + j] * s;
        }
        dots[(q_row + i) * heads + h] = dot;
        T* dqr = dq + (q_row + i) * d + h * dh;
        for (u64 j = 0; j < n; ++j) {
            T ds = probs[p_at + j] * (dp[p_at + j] - dot) * scale;
            if (ds == (T)0) continue;
            const T* kr = kv + (key_row + j) * 2 * d + h * dh;
            for (u64 c = 0; c < dh; ++c) dqr[c] += ds * kr[c];
        }
    }
    __syncthreads();
    for (u64 j = threadIdx.x; j < len; j += blockDim.x) {
        T* dk = dkv + (key_row + j) * 2 * d + h * dh;
        T* dv = dk + d;
        // Causal: query i sees key j when its position len - queries + i is at least j.
        u64 first = causal && j + queries >= len ? j + queries - len : 0;
        for (u64 i = first; i < queries; ++i) {
            u64 p_at = prob + (h * queries + i) * len;
            T p = probs[p_at + j];
            T m = dropout ? (drop_keep(p_at + j, lo, hi, threshold) ? drop_scale : (T)0) : (T)1;
            const T* gr = g + (q_row + i) * d + h * dh;
            for (u64 c = 0; c < dh; ++c) dv[c] += (p * m) * gr[c];
            T ds = p * (dp[p_at + j] - dots[(q_row + i) * heads + h]) * scale;
            if (ds == (T)0) continue;
            const T* qr = q + (q_row + i) * d + h * dh;
            for (u64 c = 0; c < dh; ++c) dk[c] += ds * qr[c];
        }
    }
}

// ------------------------------------------------------------------ contrastive pair

// The fused InfoNCE + regulariser terms of a [2n, 2n] similarity matrix (cpu/contrastive.rs):
// one block per row writes its gradient rows and its three terms (f64, as on the CPU);
// contrastive_total then adds the terms up in row order (deterministic).
template <typename T>
__device__ void contrastive_rows(const T* s, T* dn, T* dr, double* terms, u64 m, double k1, double k2) {
    __shared__ T tbuf[ROW_THREADS];
    __shared__ double dbuf[ROW_THREADS];
    __shared__ double hv[ROW_THREADS];
    __shared__ u64 hi_at[ROW_THREADS];
    const u64 NONE = ~0ull;
    u64 n = m / 2;
    for (u64 r = blockIdx.x; r < m; r += gridDim.x) {
        const T* x = s + r * m;
        T* dnr = dn + r * m;
        T* drr = dr + r * m;
        u64 p = r < n ? r + n : r - n;
        // InfoNCE over every column but the diagonal.
        T mx = -d_inf((T)0);
        for (u64 c = threadIdx.x; c < m; c += ROW_THREADS)
            if (c != r) mx = d_max(mx, x[c]);
        mx = block_max(mx, tbuf);
        double part = 0;
        for (u64 c = threadIdx.x; c < m; c += ROW_THREADS) {
            T e = c == r ? (T)0 : d_exp(x[c] - mx);
            dnr[c] = e;
            part += (double)e;
        }
        double sum = block_sum(part, dbuf);
        double lse = (double)mx + log(sum);
        double pos = (double)x[p];
        T scale = (T)(k1 / sum);
        for (u64 c = threadIdx.x; c < m; c += ROW_THREADS) {
            T v = dnr[c] * scale;
            if (c == p) v -= (T)k1;
            dnr[c] = v;
        }
        // The hardest negative, first on ties.
        double hard = -d_inf(0.0);
        u64 at = NONE;
        for (u64 c = threadIdx.x; c < m; c += ROW_THREADS) {
            double v = (double)x[c];
            if (c != r && c != p && v > hard) {
                hard = v;
                at = c;
            }
        }
        hv[threadIdx.x] = hard;
        hi_at[threadIdx.x] = at;
        __syncthreads();
        for (int st = ROW_THREADS / 2; st > 0; st >>= 1) {
            if (threadIdx.x < st) {
                double ov = hv[threadIdx.x + st];
                u64 oi = hi_at[threadIdx.x + st], mi = hi_at[threadIdx.x];
                if (oi != NONE && (mi == NONE || ov > hv[threadIdx.x] || (ov == hv[threadIdx.x] && oi < mi))) {
                    hv[threadIdx.x] = ov;
                    hi_at[threadIdx.x] = oi;
                }
            }
            __syncthreads();
        }
        hard = hv[0];
        at = hi_at[0];
        __syncthreads();
        if (at == NONE) {
            // No negative compares (NaN scores): a NaN loss, as on the CPU.
            for (u64 c = threadIdx.x; c < m; c += ROW_THREADS) drr[c] = 0;
            if (threadIdx.x == 0) {
                double nan = __longlong_as_double(0x7ff8000000000000LL);
                terms[3 * r] = nan;
                terms[3 * r + 1] = nan;
                terms[3 * r + 2] = nan;
            }
            __syncthreads();
            continue;
        }
        bool wins = pos - hard > 0.0;
        double gap = wins ? pos - hard : 0.0;
        double hi = hard + gap;
        double hinge = 0, active = 0;
        for (u64 c = threadIdx.x; c < m; c += ROW_THREADS) {
            double h = hi - (double)x[c];
            bool on = c != r && c != p && h > 0.0;
            if (on) {
                hinge += h;
                active += 1;
            }
            drr[c] = on ? (T)(-k2) : (T)0;
        }
        hinge = block_sum(hinge, dbuf);
        active = block_sum(active, dbuf);
        if (threadIdx.x == 0) {
            double hinge_total = k2 * active;
            double d_pos = wins ? k1 + hinge_total : 0.0;
            double d_hard = wins ? -k1 : hinge_total;
            drr[p] += (T)d_pos;
            drr[at] += (T)d_hard;
            terms[3 * r] = lse - pos;
            terms[3 * r + 1] = gap;
            terms[3 * r + 2] = hinge;
        }
        __syncthreads();
    }
}

template <typename T>
__device__ void contrastive_total(const double* terms, T* values, u64 m, double k1, double k2) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        double nce = 0, gaps = 0, hinges = 0;
        for (u64 r = 0; r < m; ++r) {
            nce += terms[3 * r];
            gaps += terms[3 * r + 1];
            hinges += terms[3 * r + 2];
        }
        values[0] = (T)(k1 * nce);
        values[1] = (T)(k1 * gaps + k2 * hinges);
    }
}

// ------------------------------------------------------------------ convolution max-pooled over time

// Caser's horizontal convolution (tensor/src/conv_max_pool.rs): x [b, l, d], w [n, h, d].
// One thread per output (s, f) runs over the l - h + 1 windows; the first maximum wins, as
// the CPU's.
template <typename T>
__device__ void conv_max_pool(const T* x, const T* w, const T* bias, T* out, u64* at, u64 b,
                              u64 l, u64 d, u64 n, u64 h) {
    GRID_STRIDE(p, b * n) {
        u64 f = p % n, s = p / n, hd = h * d, steps = l - h + 1;
        const T* xs = x + s * l * d;
        const T* wf = w + f * hd;
        T best = 0;
        u64 t_best = 0;
        for (u64 t = 0; t < steps; ++t) {
            T acc = 0;
            for (u64 k = 0; k < hd; ++k) acc += xs[t * d + k] * wf[k];
            if (t == 0 || acc > best) {
                best = acc;
                t_best = t;
            }
        }
        out[p] = best + bias[f];
        at[p] = t_best;
    }
}

// dx[s, r, c] = sum over the filters f whose window at[s, f] covers row r of g[s, f] w[f, r - t, c],
// in filter order (the CPU's).
template <typename T>
__device__ void conv_max_pool_dx(const T* w, const u64* at, const T* g, T* dx, u64 b, u64 l,
                                 u64 d, u64 n, u64 h) {
    GRID_STRIDE(p, b * l * d) {
        u64 c = p % d, r = (p / d) % l, s = p / (l * d);
        T acc = 0;
        for (u64 f = 0; f < n; ++f) {
            u64 t = at[s * n + f];
            if (r >= t && r < t + h) acc += g[s * n + f] * w[(f * h + (r - t)) * d + c];
        }
        dx[p] = acc;
    }
}

// dw[f, k] = sum_s g[s, f] x[s, at[s, f] d + k] over the sequences in order; the thread of k = 0
// also writes dbias[f] = sum_s g[s, f].
template <typename T>
__device__ void conv_max_pool_dw(const T* x, const u64* at, const T* g, T* dw, T* db, u64 b,
                                 u64 l, u64 d, u64 n, u64 h) {
    u64 hd = h * d;
    GRID_STRIDE(p, n * hd) {
        u64 k = p % hd, f = p / hd;
        T acc = 0, sum = 0;
        for (u64 s = 0; s < b; ++s) {
            T gf = g[s * n + f];
            acc += gf * x[(s * l + at[s * n + f]) * d + k];
            sum += gf;
        }
        dw[p] = acc;
        if (k == 0) db[f] = sum;
    }
}

// ------------------------------------------------------------------ GRU recurrence

// One step of tensor/src/gru.rs's recurrence over the `active` sequences still going, whose
// packed rows are rows[0..active]: thread (i, j) computes the three hidden products of
// state_in's row i with W_hh's rows j, H + j, 2H + j, the gates, and the new state (into
// state_out, the other of two buffers, so no thread reads what another writes).
template <typename T>
__device__ void gru_fwd_step(const T* gi, const T* w, const T* bias, int has_bias, const T* state_in,
                             T* state_out, T* states, T* saved, const u64* rows, u64 active, u64 h) {
    GRID_STRIDE(p, active * h) {
        u64 j = p % h, i = p / h, row = rows[i];
        const T* s = state_in + i * h;
        T a_r = 0, a_z = 0, a_n = 0;
        for (u64 k = 0; k < h; ++k) {
            a_r += s[k] * w[j * h + k];
            a_z += s[k] * w[(h + j) * h + k];
            a_n += s[k] * w[(2 * h + j) * h + k];
        }
        if (has_bias) {
            a_r += bias[j];
            a_z += bias[h + j];
            a_n += bias[2 * h + j];
        }
        const T* g = gi + row * 3 * h;
        T r = sigmoid_value<T>(g[j] + a_r, (T)0);
        T z = sigmoid_value<T>(g[h + j] + a_z, (T)0);
        T n = d_tanh(g[2 * h + j] + r * a_n);
        T next = n + z * (s[j] - n);
        state_out[i * h + j] = next;
        states[row * h + j] = next;
        T* keep = saved + row * 4 * h;
        keep[j] = r;
        keep[h + j] = z;
        keep[2 * h + j] = n;
        keep[3 * h + j] = a_n;
    }
}

// The gates' part of one backward step: d = carry + g, then dgi, dgh (per packed row and in
// the step's own rows, dstep) and the direct part of the previous state's gradient, d z.
template <typename T>
__device__ void gru_bwd_gates(const T* g, const T* states, const T* saved, const T* carry, T* direct,
                              T* dstep, T* dgi, T* dgh, const u64* rows, u64 active, u64 h, int first) {
    GRID_STRIDE(p, active * h) {
        u64 j = p % h, i = p / h, row = rows[i];
        const T* keep = saved + row * 4 * h;
        T r = keep[j], z = keep[h + j], n = keep[2 * h + j], gh_n = keep[3 * h + j];
        T h_prev = first ? (T)0 : states[(row - 1) * h + j];
        T d = carry[i * h + j] + g[row * h + j];
        T dn = d * ((T)1 - z);
        T dz = d * (h_prev - n);
        T da_n = dn * ((T)1 - n * n);
        T da_z = dz * z * ((T)1 - z);
        T da_r = da_n * gh_n * r * ((T)1 - r);
        dgi[row * 3 * h + j] = da_r;
        dgi[row * 3 * h + h + j] = da_z;
        dgi[row * 3 * h + 2 * h + j] = da_n;
        dgh[row * 3 * h + j] = dstep[i * 3 * h + j] = da_r;
        dgh[row * 3 * h + h + j] = dstep[i * 3 * h + h + j] = da_z;
        dgh[row * 3 * h + 2 * h + j] = dstep[i * 3 * h + 2 * h + j] = da_n * r;
        direct[i * h + j] = d * z;
    }
}

// The previous state's gradient: carry[i, k] = direct[i, k] + sum_m dstep[i, m] W_hh[m, k].
template <typename T>
__device__ void gru_bwd_carry(const T* w, const T* direct, const T* dstep, T* carry, u64 active, u64 h) {
    GRID_STRIDE(p, active * h) {
        u64 k = p % h, i = p / h;
        T acc = direct[p];
        for (u64 m = 0; m < 3 * h; ++m) acc += dstep[i * 3 * h + m] * w[m * h + k];
        carry[p] = acc;
    }
}

// ------------------------------------------------------------------ exported names

#define INSTANTIATE(T, S)                                                                          \
    extern "C" __global__ void strided_copy_##S(const T* x, T* y, u64 n, const u64* meta, int rank, u64 base) { strided_copy(x, y, n, meta, rank, base); } \
    extern "C" __global__ void masked_fill_##S(const T* x, const T* m, T* y, u64 n, const u64* meta, int rank, T v) { masked_fill(x, m, y, n, meta, rank, v); } \
    extern "C" __global__ void dropout_##S(const T* x, T* y, u64 n, u32 lo, u32 hi, u32 th, T sc) { dropout(x, y, n, lo, hi, th, sc); } \
    extern "C" __global__ void adam_##S(T* p, const T* g, T* m, T* v, u64 n, T b1, T b2, T b1c, T b2c, T wd, T ss, T isb, T eps) { adam(p, g, m, v, n, b1, b2, b1c, b2c, wd, ss, isb, eps); } \
    extern "C" __global__ void reduce_##S(const T* x, T* y, u64 o, u64 l, u64 i, int op) { reduce(x, y, o, l, i, op); } \
    extern "C" __global__ void reduce_partial_##S(const T* x, T* p, u64 o, u64 l, u64 i, u64 ch, int op) { reduce_partial(x, p, o, l, i, ch, op); } \
    extern "C" __global__ void arg_reduce_##S(const T* x, T* y, u64* idx, u64 o, u64 l, u64 i, int mx) { arg_reduce(x, y, idx, o, l, i, mx); } \
    extern "C" __global__ void softmax_rows_##S(const T* x, T* y, u64 rows, u64 n, int lg) { softmax_rows(x, y, rows, n, lg); } \
    extern "C" __global__ void layer_norm_##S(const T* x, const T* g, const T* b, T* y, T* mu, T* rs, u64 rows, u64 n, T eps) { layer_norm(x, g, b, y, mu, rs, rows, n, eps); } \
    extern "C" __global__ void layer_norm_bwd_dx_##S(const T* x, const T* ga, const T* mu, const T* rs, const T* g, T* dx, u64 rows, u64 n) { layer_norm_bwd_dx(x, ga, mu, rs, g, dx, rows, n); } \
    extern "C" __global__ void layer_norm_bwd_params_##S(const T* x, const T* mu, const T* rs, const T* g, T* dg, T* db, u64 rows, u64 n, u64 ch) { layer_norm_bwd_params(x, mu, rs, g, dg, db, rows, n, ch); } \
    extern "C" __global__ void index_select_##S(const T* x, const u64* idx, T* y, u64 o, u64 l, u64 k, u64 i, int pe) { index_select(x, idx, y, o, l, k, i, pe); } \
    extern "C" __global__ void index_add_##S(const T* s, const u64* idx, T* y, u64 o, u64 l, u64 k, u64 i, int pe) { index_add(s, idx, y, o, l, k, i, pe); } \
    extern "C" __global__ void concat_block_##S(const T* s, T* d, u64 o, u64 sr, u64 dr, u64 off) { concat_block(s, d, o, sr, dr, off); } \
    extern "C" __global__ void attention_fwd_##S(const T* q, const T* kv, T* ctx, T* p, const u64* seqs, const u32* bl, u64 d, u64 heads, T scale, int dr, u32 lo, u32 hi, u32 th, T ds, int causal) { attention_fwd(q, kv, ctx, p, seqs, bl, d, heads, scale, dr, lo, hi, th, ds, causal); } \
    extern "C" __global__ void attention_bwd_##S(const T* g, const T* q, const T* kv, const T* p, T* dq, T* dkv, T* dp, T* dots, const u64* seqs, u64 d, u64 heads, T scale, int dr, u32 lo, u32 hi, u32 th, T ds, int causal) { attention_bwd(g, q, kv, p, dq, dkv, dp, dots, seqs, d, heads, scale, dr, lo, hi, th, ds, causal); } \
    extern "C" __global__ void contrastive_rows_##S(const T* s, T* dn, T* dr, double* terms, u64 m, double k1, double k2) { contrastive_rows(s, dn, dr, terms, m, k1, k2); } \
    extern "C" __global__ void contrastive_total_##S(const double* terms, T* values, u64 m, double k1, double k2) { contrastive_total(terms, values, m, k1, k2); } \
    extern "C" __global__ void conv_max_pool_##S(const T* x, const T* w, const T* bi, T* o, u64* at, u64 b, u64 l, u64 d, u64 n, u64 h) { conv_max_pool(x, w, bi, o, at, b, l, d, n, h); } \
    extern "C" __global__ void conv_max_pool_dx_##S(const T* w, const u64* at, const T* g, T* dx, u64 b, u64 l, u64 d, u64 n, u64 h) { conv_max_pool_dx(w, at, g, dx, b, l, d, n, h); } \
    extern "C" __global__ void conv_max_pool_dw_##S(const T* x, const u64* at, const T* g, T* dw, T* db, u64 b, u64 l, u64 d, u64 n, u64 h) { conv_max_pool_dw(x, at, g, dw, db, b, l, d, n, h); } \
    extern "C" __global__ void gru_fwd_step_##S(const T* gi, const T* w, const T* bi, int hb, const T* si, T* so, T* st, T* sv, const u64* rows, u64 a, u64 h) { gru_fwd_step(gi, w, bi, hb, si, so, st, sv, rows, a, h); } \
    extern "C" __global__ void gru_bwd_gates_##S(const T* g, const T* st, const T* sv, const T* c, T* di, T* ds, T* dgi, T* dgh, const u64* rows, u64 a, u64 h, int f) { gru_bwd_gates(g, st, sv, c, di, ds, dgi, dgh, rows, a, h, f); } \
    extern "C" __global__ void gru_bwd_carry_##S(const T* w, const T* di, const T* ds, T* c, u64 a, u64 h) { gru_bwd_carry(w, di, ds, c, a, h); } \
    extern "C" __global__ void topk_rows_##S(const T* x, T* v, u64* idx, u64 rows, u64 n, u64 k) { topk_rows(x, v, idx, rows, n, k); } \
    extern "C" __global__ void count_greater_##S(const T* x, const u64* cols, u64* counts, u64 rows, u64 n) { count_greater(x, cols, counts, rows, n); }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)

#define UNARY_KERNELS(T, S, NAME)                                                          \
    extern "C" __global__ void unary_##NAME##_##S(const T* x, T* y, u64 n, T c) {          \
        GRID_STRIDE(i, n) { y[i] = NAME##_value<T>(x[i], c); }                             \
    }                                                                                      \
    extern "C" __global__ void unary_backward_##NAME##_##S(const T* x, const T* y, const T* gy, T* gx, u64 n, T c) { \
        GRID_STRIDE(i, n) { gx[i] = gy[i] * NAME##_derivative<T>(x[i], y[i], c); }         \
    }
#define BINARY_KERNELS(T, S, NAME)                                                         \
    extern "C" __global__ void binary_##NAME##_##S(const T* a, const T* b, T* y, u64 n, u64 al, u64 bl, const u64* meta, int rank) { \
        binary<T, NAME##_op>(a, b, y, n, al, bl, meta, rank);                              \
    }
#define BINARY_KERNELS_F32(NAME, VALUE) BINARY_KERNELS(float, f32, NAME)
#define BINARY_KERNELS_F64(NAME, VALUE) BINARY_KERNELS(double, f64, NAME)
BINARY_OPS(BINARY_KERNELS_F32)
BINARY_OPS(BINARY_KERNELS_F64)

#define UNARY_KERNELS_F32(NAME, VALUE, DERIVATIVE) UNARY_KERNELS(float, f32, NAME)
#define UNARY_KERNELS_F64(NAME, VALUE, DERIVATIVE) UNARY_KERNELS(double, f64, NAME)
UNARY_OPS(UNARY_KERNELS_F32)
UNARY_OPS(UNARY_KERNELS_F64)
