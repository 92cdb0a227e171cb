// The trainer's own CUDA kernels (candle has no fused equivalents). Compiled to PTX by build.rs
// with the same nvcc as candle's kernels, loaded by train/src/cuda/mod.rs.
//
// The batch cursor lives on the device (`step`, the step's index within the epoch) so that a
// whole training step can be captured once as a CUDA graph and replayed: the kernels read it
// instead of taking per-step values from the host.
//
// Arithmetic that must match the CPU bit for bit uses the explicitly rounded intrinsics
// (__fmul_rn, __fadd_rn, ...), which nvcc never contracts into fused multiply-adds.

#include <stdint.h>

// x[i, :] = images[order[step * batch + i], :] * scale, for the `count` rows of this step
// (`count` < `batch` only in an epoch's last, partial step).
extern "C" __global__ void gather_images(const uint8_t *images, const uint32_t *order, const uint32_t *step,
                                         uint32_t batch, uint32_t count, uint32_t pixels, float scale,
                                         float *x) {
    const uint32_t base = *step * batch;
    const uint32_t total = count * pixels;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const uint32_t row = i / pixels, col = i % pixels;
        const size_t src = (size_t)order[base + row] * pixels + col;
        // candle's to_dtype + affine(scale, 0): x * scale + 0, rounded once each.
        x[i] = __fadd_rn(__fmul_rn((float)images[src], scale), 0.0f);
    }
}

extern "C" __global__ void gather_labels(const uint32_t *labels, const uint32_t *order, const uint32_t *step,
                                         uint32_t batch, uint32_t count, uint32_t *y) {
    const uint32_t base = *step * batch;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        y[i] = labels[order[base + i]];
    }
}

// Mean softmax cross-entropy of logits [rows, classes] against labels [rows]; one block.
// A label out of range makes the loss NaN (the trainer stops on a non-finite loss).
extern "C" __global__ void cross_entropy_fwd(const float *logits, const uint32_t *labels, uint32_t rows,
                                             uint32_t classes, float *loss) {
    __shared__ float partial[256];
    float sum = 0.0f;
    for (uint32_t r = threadIdx.x; r < rows; r += blockDim.x) {
        const float *row = logits + (size_t)r * classes;
        float mx = row[0];
        for (uint32_t c = 1; c < classes; c++) mx = fmaxf(mx, row[c]);
        float s = 0.0f;
        for (uint32_t c = 0; c < classes; c++) s += expf(row[c] - mx);
        const uint32_t y = labels[r];
        sum += y < classes ? (logf(s) + mx - row[y]) : __int_as_float(0x7fc00000);
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (uint32_t half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = partial[0] / (float)rows;
}

// d loss / d logits = (softmax - onehot(label)) * grad_loss / rows.
extern "C" __global__ void cross_entropy_bwd(const float *logits, const uint32_t *labels, const float *grad_loss,
                                             uint32_t rows, uint32_t classes, float *grad) {
    const uint32_t total = rows * classes;
    const float g = *grad_loss / (float)rows;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const uint32_t r = i / classes, c = i % classes;
        const float *row = logits + (size_t)r * classes;
        float mx = row[0];
        for (uint32_t k = 1; k < classes; k++) mx = fmaxf(mx, row[k]);
        float s = 0.0f;
        for (uint32_t k = 0; k < classes; k++) s += expf(row[k] - mx);
        const float p = expf(row[c] - mx) / s;
        grad[i] = (p - (labels[r] == c ? 1.0f : 0.0f)) * g;
    }
}

// One Adam step of one parameter, in place. `table` holds, per step of the epoch, the two
// step-dependent scalars the host computes in f64 exactly as the CPU path does:
// (lr / (1 - beta1^t), 1 / sqrt(1 - beta2^t)). Each operation mirrors train/src/optim.rs's
// `cpu_update`, so the result is bit-identical to the CPU's.
extern "C" __global__ void adam_update(float *p, const float *g, float *m, float *v, uint32_t n,
                                       const float *table, const uint32_t *step, float b1, float c1, float b2,
                                       float c2, float eps) {
    const uint32_t t = *step;
    const float lr_t = table[2 * t], inv_b2 = table[2 * t + 1];
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float gi = g[i];
        const float mi = __fadd_rn(__fadd_rn(__fmul_rn(m[i], b1), 0.0f), __fadd_rn(__fmul_rn(gi, c1), 0.0f));
        const float vi =
            __fadd_rn(__fadd_rn(__fmul_rn(v[i], b2), 0.0f), __fadd_rn(__fmul_rn(__fmul_rn(gi, gi), c2), 0.0f));
        const float denom = __fadd_rn(__fmul_rn(__fadd_rn(__fmul_rn(__fsqrt_rn(vi), inv_b2), 0.0f), 1.0f), eps);
        const float update = __fadd_rn(__fmul_rn(__fdiv_rn(mi, denom), lr_t), 0.0f);
        p[i] = __fsub_rn(p[i], update);
        m[i] = mi;
        v[i] = vi;
    }
}

// Ends a step: adds loss * rows to loss_sum and the number of rows whose first maximal logit is
// the label to correct, then advances the step cursor. One block.
extern "C" __global__ void finish_step(const float *logits, const uint32_t *labels, const float *loss, uint32_t rows,
                                       uint32_t classes, float *loss_sum, uint32_t *correct, uint32_t *step) {
    __shared__ uint32_t hits;
    if (threadIdx.x == 0) hits = 0;
    __syncthreads();
    for (uint32_t r = threadIdx.x; r < rows; r += blockDim.x) {
        const float *row = logits + (size_t)r * classes;
        uint32_t best = 0;
        for (uint32_t c = 1; c < classes; c++)
            if (row[c] > row[best]) best = c;
        if (best == labels[r]) atomicAdd(&hits, 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        *loss_sum = __fadd_rn(*loss_sum, __fmul_rn(*loss, (float)rows));
        *correct += hits;
        *step += 1;
    }
}

// ---- conv bias + ReLU + 2x2 max-pool, on the convolution's output ----------------------------
// x: [n, c, h, w] (conv without bias), b: [c] -> y: [n, c, h/2, w/2]. Each window takes x + b
// (rounded as the CPU's fused op rounds it), its first maximum in row-major order, and ReLU.
// The gradient goes to that first maximum only if it was > 0: the CPU op's semantics (and
// PyTorch's), unlike candle 0.11.1's stock max-pool backward.

struct Window {
    uint32_t at;    // index into x of the window's winner
    float value;    // its value, bias added
};

__device__ Window pool_window(const float *x, const float *b, uint32_t i, uint32_t c, uint32_t h, uint32_t w) {
    const uint32_t ph = h / 2, pw = w / 2;
    const uint32_t px = i % pw, py = (i / pw) % ph, plane = i / (pw * ph);
    const float bias = b[plane % c];
    const uint32_t top = plane * h * w + 2 * py * w + 2 * px;
    const uint32_t at[4] = {top, top + 1, top + w, top + w + 1};
    Window best = {at[0], __fadd_rn(x[at[0]], bias)};
    for (int k = 1; k < 4; k++) {
        const float v = __fadd_rn(x[at[k]], bias);
        if (v > best.value) best = Window{at[k], v};
    }
    return best;
}

extern "C" __global__ void bias_relu_pool_fwd(const float *x, const float *b, uint32_t n, uint32_t c, uint32_t h,
                                              uint32_t w, float *y) {
    const uint32_t total = n * c * (h / 2) * (w / 2);
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const Window win = pool_window(x, b, i, c, h, w);
        y[i] = win.value > 0.0f ? win.value : 0.0f;
    }
}

// grad_x must be zeroed first: only winners are written (windows do not overlap).
extern "C" __global__ void bias_relu_pool_bwd_x(const float *x, const float *b, const float *grad_y, uint32_t n,
                                                uint32_t c, uint32_t h, uint32_t w, float *grad_x) {
    const uint32_t total = n * c * (h / 2) * (w / 2);
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const Window win = pool_window(x, b, i, c, h, w);
        if (win.value > 0.0f) grad_x[win.at] = grad_y[i];
    }
}

// grad_b[ch] = sum of grad_y over the windows of channel ch that passed ReLU. One 256-thread
// block per channel; a fixed reduction order keeps it deterministic.
extern "C" __global__ void bias_relu_pool_bwd_b(const float *x, const float *b, const float *grad_y, uint32_t n,
                                                uint32_t c, uint32_t h, uint32_t w, float *grad_b) {
    __shared__ float partial[256];
    const uint32_t ch = blockIdx.x, per_plane = (h / 2) * (w / 2);
    float sum = 0.0f;
    for (uint32_t k = threadIdx.x; k < n * per_plane; k += blockDim.x) {
        const uint32_t i = ((k / per_plane) * c + ch) * per_plane + k % per_plane;
        const Window win = pool_window(x, b, i, c, h, w);
        if (win.value > 0.0f) sum += grad_y[i];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (uint32_t half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) grad_b[ch] = partial[0];
}
