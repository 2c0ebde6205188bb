// Data movement: one strided copy serves Transpose, Slice, Concat, Split and Expand; Pad and
// Gather have their own kernels. Shape kernels move bits, so they are instantiated per element
// size: f32 (any 4-byte type), f16 (2 bytes), i64 (8 bytes), u8 (1 byte).

// dst[dst_base + sum(c_k * ds_k)] = src[src_base + sum(c_k * ss_k)] for every index c of `dims`.
// Strides may be negative (a Slice with a negative step).
template <typename T>
__device__ void strided_copy(const T* src, T* dst, i64_t n, int rank, Dims dims, Dims ss, Dims ds,
                             i64_t src_base, i64_t dst_base) {
    FOR_EACH(i, n) {
        i64_t rem = i, is = src_base, id = dst_base;
        for (int k = rank - 1; k >= 0; --k) {
            i64_t c = rem % dims.d[k];
            rem /= dims.d[k];
            is += c * ss.d[k];
            id += c * ds.d[k];
        }
        dst[id] = src[is];
    }
}

// Pad: out dims `od`, input dims `xd`, `begin` the leading pads; mode 0 constant, 1 reflect, 2 edge.
// The input element output element i reads (`*outside`: none, the constant's place in mode 0).
__device__ __forceinline__ i64_t pad_source(i64_t i, int rank, Dims od, Dims xd, Dims begin,
                                            int mode, bool* outside) {
    i64_t rem = i, ix = 0, stride = 1;
    *outside = false;
    for (int k = rank - 1; k >= 0; --k) {
        i64_t c = rem % od.d[k] - begin.d[k];
        rem /= od.d[k];
        i64_t len = xd.d[k];
        if (c < 0 || c >= len) {
            if (mode == 0) {
                *outside = true;
            } else if (mode == 1) {
                c = c < 0 ? -c : 2 * (len - 1) - c;
            } else {
                c = c < 0 ? 0 : len - 1;
            }
        }
        ix += c * stride;
        stride *= len;
    }
    return ix;
}

// `value` holds the constant's bits in the element type.
template <typename T>
__device__ void pad(const T* x, T* y, i64_t n, int rank, Dims od, Dims xd, Dims begin, int mode,
                    T value) {
    FOR_EACH(i, n) {
        bool outside;
        i64_t ix = pad_source(i, rank, od, xd, begin, mode, &outside);
        y[i] = outside ? value : x[ix];
    }
}

// Zero padding and narrowing in one pass: an f32 x into an f16 y, each element what the f32 → f16
// cast (`elementwise_cast_f32_f16`) and then `pad` with the constant 0 would give. A convolution
// on cuDNN with TF "same" padding reading the f32 graph input of an fp16 session runs it as its
// pre-padding (runtime/src/cuda/fuse.rs, `Prologue::narrow`): one launch instead of two.
extern "C" __global__ void shape_pad_zero_narrow(const float* x, f16_t* y, i64_t n, int rank, Dims od,
                                                 Dims xd, Dims begin) {
    FOR_EACH(i, n) {
        bool outside;
        i64_t ix = pad_source(i, rank, od, xd, begin, 0, &outside);
        st(y, i, outside ? 0.0f : x[ix]);
    }
}

// Gather along an axis: x [outer, axis_len, inner] -> y [outer, n_idx, inner]. Indices may be
// negative (from the end); one out of range writes zeros (the CPU backend reports it instead).
template <typename T, typename I>
__device__ void gather(const T* x, const I* idx, T* y, i64_t outer, i64_t axis_len, i64_t n_idx,
                       i64_t inner) {
    FOR_EACH(i, outer * n_idx * inner) {
        i64_t in = i % inner, j = (i / inner) % n_idx, o = i / (inner * n_idx);
        i64_t k = (i64_t)idx[j];
        if (k < 0) k += axis_len;
        y[i] = (k < 0 || k >= axis_len) ? (T)0 : x[(o * axis_len + k) * inner + in];
    }
}

#define SHAPE(T, S)                                                                                  \
    extern "C" __global__ void shape_strided_copy_##S(const T* src, T* dst, i64_t n, int rank,       \
                                                      Dims dims, Dims ss, Dims ds, i64_t src_base,   \
                                                      i64_t dst_base) {                              \
        strided_copy(src, dst, n, rank, dims, ss, ds, src_base, dst_base);                           \
    }                                                                                                \
    extern "C" __global__ void shape_pad_##S(const T* x, T* y, i64_t n, int rank, Dims od, Dims xd,  \
                                             Dims begin, int mode, T value) {                        \
        pad(x, y, n, rank, od, xd, begin, mode, value);                                              \
    }                                                                                                \
    extern "C" __global__ void shape_gather_##S(const T* x, const i64_t* idx, T* y, i64_t outer,     \
                                                i64_t axis_len, i64_t n_idx, i64_t inner) {          \
        gather(x, idx, y, outer, axis_len, n_idx, inner);                                            \
    }                                                                                                \
    extern "C" __global__ void shape_gather_i32_##S(const T* x, const int* idx, T* y, i64_t outer,   \
                                                    i64_t axis_len, i64_t n_idx, i64_t inner) {      \
        gather(x, idx, y, outer, axis_len, n_idx, inner);                                            \
    }

SHAPE(unsigned int, f32)
SHAPE(unsigned short, f16)
SHAPE(unsigned long long, i64)
SHAPE(unsigned char, u8)
