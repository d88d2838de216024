/* cuDNN's fused SDPA (flash attention) for the CUDA backend, built with cudnn-frontend's graph API
 * (header-only, C++17; kept in this one translation unit behind attention_cudnn.h's C functions).
 *
 * Layouts (kernels/ops.h). qkv[N, ld], ld = (Hq + 2 Hkv) D, N = B T, each row grouped by KV group
 * g: [q_{gG} .. q_{gG+G-1}, k_g, v_g] (G = Hq / Hkv). cuDNN takes Q, K, V as 4-D [b, h, s, d]
 * tensors with any strides, so they are views into qkv, never copies:
 *   Q [B, hq, T, D]  strides (T ld, qs, ld, 1)        K, V [B, hkv, T, D]  strides (T ld, (G+2) D, ld, 1)
 * where qs = D when the call's q heads sit side by side (MQA: Hkv = 1, or one call per KV group)
 * and 3D for MHA (G = 1: [q_h, k_h, v_h] per head). GQA with Hkv > 1 and G > 1 is run as Hkv
 * calls of one KV group each (the same plan, other base pointers).
 *   O, dO [B, hq, T, D]  strides (T Hq D, D, Hq D, 1)     (out[N, Hq D], head h at column h D)
 *   Stats [B, hq, T, 1]  strides (Hq T, T, 1, 1), fp32    (lse[B, Hq, T]: ln sum exp of scaled scores)
 * dQ, dK, dV are written into dqkv at the offsets of Q, K, V (every element of dqkv is written).
 * Softmax and accumulation in fp32; P is rounded to bf16 for the P V product, as in the built-in
 * kernels. Causal mask: top-left diagonal (T_q = T_kv).
 *
 * Document masks (seg) run as cuDNN's ragged ("THD") layout: each document of each sequence is one
 * of n cuDNN sequences (n = the documents rounded up to a power of two, so few plans are built;
 * the rest have length 0), given by its length and the element offset of its first row in every
 * tensor. gt_cudnn_attn_segments() derives them on the host from the micro-batch's segment ids,
 * which must form contiguous runs (one run per id in a sequence; else the built-in kernels run).
 * Stats are then ragged too, [N, hq] (token-major); a small kernel moves them to and from lse's
 * [B, Hq, T]. */
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "attention_cudnn.h"
#include "cuda_common.cuh"

namespace fe = cudnn_frontend;

/* Oldest cuDNN run-time accepted: 9.0, the first with Hopper's fused flash attention forward and
 * backward through the graph API; each shape is then checked by cuDNN itself (check_support). */
#define GT_CUDNN_MIN_VERSION 90000

#define CUDNN_CHECK(call)                                                                          \
    do {                                                                                           \
        cudnnStatus_t s_ = (call);                                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS)                                                            \
            gt_die(__FILE__, __LINE__, "%s: %s", #call, cudnnGetErrorString(s_));                  \
    } while (0)

enum {
    UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV,
    UID_SEQ_Q, UID_SEQ_KV, UID_QKV_OFF, UID_O_OFF, UID_ST_OFF
};

namespace {

struct shape_key {
    int B, T, Hq, Hkv, D;
    float scale;
    int n; /* ragged sequences (documents + padding) with a document mask; 0: none */
    bool operator==(const shape_key &o) const {
        return B == o.B && T == o.T && Hq == o.Hq && Hkv == o.Hkv && D == o.D &&
               scale == o.scale && n == o.n;
    }
};

/* The documents of the current micro-batch (gt_cudnn_attn_segments), as cuDNN's ragged layout. */
struct ragged {
    const int32_t *seg = nullptr; /* the device segment ids these describe; NULL: none usable */
    int n = 0, B = 0, T = 0;
    std::vector<int32_t> len, row; /* per cuDNN sequence: length, first row (N for padding) */
    int32_t *dev = nullptr;        /* device: seq_len[n], qkv_off[n+1], o_off[n+1], st_off[n+1] */
    int dev_cap = 0;               /* n of the device allocation */
    int64_t uploaded_ld = -1, uploaded_ow = -1; /* multipliers of the offsets now on the device */
};

/* How one shape maps onto cuDNN calls (see the file comment). Offsets are in elements. */
struct call_layout {
    int calls;      /* 1, or Hkv for GQA with G > 1 */
    int hq, hkv;    /* heads of one call */
    int64_t ld;     /* qkv row */
    int64_t qs, ks; /* q head stride, kv head stride in a qkv row */
    int64_t q_off(int c, int G, int D) const { return (int64_t)c * (G + 2) * D; }
    int64_t k_off(int c, int G, int D) const { return ((int64_t)c * (G + 2) + G) * D; }
};

call_layout layout_of(const shape_key &k) {
    const int G = k.Hq / k.Hkv;
    call_layout l;
    l.calls = (G == 1 || k.Hkv == 1) ? 1 : k.Hkv;
    l.hq = k.Hq / l.calls;
    l.hkv = k.Hkv / l.calls;
    l.ld = (int64_t)(k.Hq + 2 * k.Hkv) * k.D;
    l.qs = G == 1 ? 3 * (int64_t)k.D : (int64_t)k.D;
    l.ks = (int64_t)(G + 2) * k.D;
    return l;
}

struct plan {
    shape_key key;
    bool ok;
    std::shared_ptr<fe::graph::Graph> fwd, bwd;
    int64_t ws_fwd, ws_bwd;
};

}  // namespace

struct gt_cudnn_attn {
    cudnnHandle_t handle;
    cudaStream_t stream;
    int version;
    bool deterministic;
    std::vector<plan> plans; /* a handful of shapes per run: a linear search is enough */
    void *workspace;         /* one buffer for every plan (all work is on one stream) */
    int64_t workspace_bytes;
    float *stats;            /* ragged stats [N, Hq] of the largest shape seen */
    size_t stats_elems;
    ragged docs;
};

static bool is_rank0(void) { return gt_env_rank() == 0; }

static std::shared_ptr<fe::graph::Tensor_attributes> tensor(fe::graph::Graph &g, const char *name,
                                                            int64_t uid,
                                                            std::vector<int64_t> dim,
                                                            std::vector<int64_t> stride) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim(dim)
                        .set_stride(stride));
}

static std::shared_ptr<fe::graph::Graph> new_graph(void) {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

/* Q, K, V views of one call (dims and strides of the file comment). */
struct qkv_views {
    std::vector<int64_t> qd, qst, kd, kst, od, ost, sd, sst;
};

static qkv_views views_of(const shape_key &k, const call_layout &l) {
    qkv_views v;
    v.qd = {k.B, l.hq, k.T, k.D};
    v.qst = {(int64_t)k.T * l.ld, l.qs, l.ld, 1};
    v.kd = {k.B, l.hkv, k.T, k.D};
    v.kst = {(int64_t)k.T * l.ld, l.ks, l.ld, 1};
    const int64_t ow = (int64_t)k.Hq * k.D;
    v.od = {k.B, l.hq, k.T, k.D};
    v.ost = {(int64_t)k.T * ow, k.D, ow, 1};
    v.sd = {k.B, l.hq, k.T, 1};
    v.sst = {(int64_t)k.Hq * k.T, k.T, 1, 1};
    if (k.n) { /* ragged: n sequences; stats token-major [N, Hq] */
        v.qd[0] = v.kd[0] = v.od[0] = v.sd[0] = k.n;
        v.sst = {(int64_t)k.T * k.Hq, 1, k.Hq, 1};
    }
    return v;
}

/* Each step's error_t is returned as soon as it is bad (error_t is [[nodiscard]]: no assignment). */
#define FE_TRY(expr)                                                                               \
    do {                                                                                           \
        fe::error_t e_ = (expr);                                                                   \
        if (!e_.is_good()) return e_;                                                              \
    } while (0)

static fe::error_t finish(fe::graph::Graph &g, cudnnHandle_t h, int64_t *workspace) {
    FE_TRY(g.validate());
    FE_TRY(g.build_operation_graph(h));
    FE_TRY(g.create_execution_plans({fe::HeurMode_t::A}));
    FE_TRY(g.check_support(h));
    FE_TRY(g.build_plans(h, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE));
    return g.get_workspace_size(*workspace);
}

/* The ragged inputs of a document-masked plan: sequence lengths and the element offset of each
 * sequence's first row in qkv (Q, K, V and their gradients), in out (O, dO) and in the stats. */
struct ragged_tensors {
    std::shared_ptr<fe::graph::Tensor_attributes> seq_q, seq_kv, qkv_off, o_off, st_off;
};

static ragged_tensors ragged_inputs(fe::graph::Graph &g, int n) {
    ragged_tensors r;
    const std::vector<int64_t> one = {1, 1, 1, 1};
    r.seq_q = tensor(g, "seq_len_q", UID_SEQ_Q, {n, 1, 1, 1}, one);
    r.seq_kv = tensor(g, "seq_len_kv", UID_SEQ_KV, {n, 1, 1, 1}, one);
    r.qkv_off = tensor(g, "qkv_offset", UID_QKV_OFF, {n + 1, 1, 1, 1}, one);
    r.o_off = tensor(g, "o_offset", UID_O_OFF, {n + 1, 1, 1, 1}, one);
    r.st_off = tensor(g, "stats_offset", UID_ST_OFF, {n + 1, 1, 1, 1}, one);
    for (auto *t : {&r.seq_q, &r.seq_kv, &r.qkv_off, &r.o_off, &r.st_off})
        (*t)->set_data_type(fe::DataType_t::INT32);
    return r;
}

/* The Q, K, V views into qkv of a new graph. */
static std::shared_ptr<fe::graph::Graph> graph_with_qkv(const qkv_views &v,
                                                        std::shared_ptr<fe::graph::Tensor_attributes> *q,
                                                        std::shared_ptr<fe::graph::Tensor_attributes> *k,
                                                        std::shared_ptr<fe::graph::Tensor_attributes> *vv) {
    auto g = new_graph();
    *q = tensor(*g, "Q", UID_Q, v.qd, v.qst);
    *k = tensor(*g, "K", UID_K, v.kd, v.kst);
    *vv = tensor(*g, "V", UID_V, v.kd, v.kst);
    return g;
}

static fe::error_t build_fwd(gt_cudnn_attn *a, plan &p, const qkv_views &v) {
    std::shared_ptr<fe::graph::Tensor_attributes> q, k, vv;
    p.fwd = graph_with_qkv(v, &q, &k, &vv);
    fe::graph::Graph &g = *p.fwd;
    auto opt = fe::graph::SDPA_attributes()
                   .set_name("attention_fwd")
                   .set_generate_stats(true)
                   .set_causal_mask(true)
                   .set_attn_scale(p.key.scale);
    ragged_tensors r;
    if (p.key.n) {
        r = ragged_inputs(g, p.key.n);
        for (auto *t : {&q, &k, &vv}) (*t)->set_ragged_offset(r.qkv_off);
        opt.set_padding_mask(true).set_seq_len_q(r.seq_q).set_seq_len_kv(r.seq_kv);
    }
    auto outs = g.sdpa(q, k, vv, opt);
    outs[0]->set_output(true).set_uid(UID_O).set_dim(v.od).set_stride(v.ost);
    outs[1]->set_output(true).set_uid(UID_STATS).set_data_type(fe::DataType_t::FLOAT)
        .set_dim(v.sd).set_stride(v.sst);
    if (p.key.n) {
        outs[0]->set_ragged_offset(r.o_off);
        outs[1]->set_ragged_offset(r.st_off);
    }
    return finish(g, a->handle, &p.ws_fwd);
}

static fe::error_t build_bwd(gt_cudnn_attn *a, plan &p, const qkv_views &v) {
    std::shared_ptr<fe::graph::Tensor_attributes> q, k, vv;
    p.bwd = graph_with_qkv(v, &q, &k, &vv);
    fe::graph::Graph &g = *p.bwd;
    auto o = tensor(g, "O", UID_O, v.od, v.ost);
    auto dout = tensor(g, "dO", UID_DO, v.od, v.ost);
    auto stats = tensor(g, "Stats", UID_STATS, v.sd, v.sst);
    stats->set_data_type(fe::DataType_t::FLOAT);
    auto opt = fe::graph::SDPA_backward_attributes()
                   .set_name("attention_bwd")
                   .set_causal_mask(true)
                   .set_attn_scale(p.key.scale)
                   .set_deterministic_algorithm(a->deterministic);
    ragged_tensors r;
    if (p.key.n) {
        r = ragged_inputs(g, p.key.n);
        for (auto *t : {&q, &k, &vv}) (*t)->set_ragged_offset(r.qkv_off);
        for (auto *t : {&o, &dout}) (*t)->set_ragged_offset(r.o_off);
        stats->set_ragged_offset(r.st_off);
        opt.set_padding_mask(true).set_seq_len_q(r.seq_q).set_seq_len_kv(r.seq_kv);
    }
    auto grads = g.sdpa_backward(q, k, vv, o, dout, stats, opt);
    grads[0]->set_output(true).set_uid(UID_DQ).set_dim(v.qd).set_stride(v.qst);
    grads[1]->set_output(true).set_uid(UID_DK).set_dim(v.kd).set_stride(v.kst);
    grads[2]->set_output(true).set_uid(UID_DV).set_dim(v.kd).set_stride(v.kst);
    if (p.key.n)
        for (auto &t : grads) t->set_ragged_offset(r.qkv_off);
    return finish(g, a->handle, &p.ws_bwd);
}

static void grow_workspace(gt_cudnn_attn *a, int64_t bytes) {
    if (bytes <= a->workspace_bytes) return;
    if (a->workspace) CUDA_CHECK(cudaFree(a->workspace));
    cudaError_t e = cudaMalloc(&a->workspace, (size_t)bytes);
    if (e != cudaSuccess)
        GT_DIE("cudaMalloc of %lld bytes for cuDNN attention's workspace: %s", (long long)bytes,
               cudaGetErrorString(e));
    a->workspace_bytes = bytes;
}

static fe::error_t build_both(gt_cudnn_attn *a, plan &p, const qkv_views &v) {
    if (p.key.D % 8 != 0)
        return fe::error_t(fe::error_code_t::GRAPH_NOT_SUPPORTED, "head_dim is not a multiple of 8");
    /* Several KV groups of several q heads need one call per group, whose stats would start at
     * offsets cuDNN need not accept; Gemma's models are MHA or MQA. */
    /* Measured with cuDNN 9.14 on an H200: the ragged backward at head_dim 256 gave wrong dK/dV
     * (inf in some cases) for 4 of 8 document-masked test cases; head_dim <= 128 matched. */
    if (p.key.n && p.key.D > 128)
        return fe::error_t(fe::error_code_t::GRAPH_NOT_SUPPORTED,
                           "document masks at head_dim > 128");
    if (layout_of(p.key).calls > 1)
        return fe::error_t(fe::error_code_t::GRAPH_NOT_SUPPORTED,
                           "grouped-query attention with more than one KV head");
    try {
        FE_TRY(build_fwd(a, p, v));
        return build_bwd(a, p, v);
    } catch (const std::exception &x) {
        return fe::error_t(fe::error_code_t::GRAPH_NOT_SUPPORTED, x.what());
    }
}

/* The plan of a shape, built on first use (forward and backward together: a shape runs in cuDNN
 * only if both are supported, so that the lse of the forward is the one its backward reads). */
static plan &plan_for(gt_cudnn_attn *a, const shape_key &key) {
    for (plan &p : a->plans)
        if (p.key == key) return p;
    plan p;
    p.key = key;
    p.ok = false;
    p.ws_fwd = p.ws_bwd = 0;
    fe::error_t e = build_both(a, p, views_of(key, layout_of(key)));
    p.ok = e.is_good();
    if (p.ok)
        grow_workspace(a, p.ws_fwd > p.ws_bwd ? p.ws_fwd : p.ws_bwd);
    else {
        p.fwd.reset();
        p.bwd.reset();
        if (is_rank0())
            fprintf(stderr,
                    "gemmatron: attention B=%d T=%d Hq=%d Hkv=%d D=%d%s: cuDNN declines (%s); the "
                    "built-in kernel runs it\n",
                    key.B, key.T, key.Hq, key.Hkv, key.D, key.n ? " with documents" : "",
                    e.get_message().c_str());
    }
    a->plans.push_back(p);
    return a->plans.back();
}

static void run(gt_cudnn_attn *a, const fe::graph::Graph &g, std::unordered_map<int64_t, void *> &pack,
                const char *what) {
    fe::error_t e = g.execute(a->handle, pack, a->workspace);
    if (!e.is_good()) GT_DIE("cuDNN %s: %s", what, e.get_message().c_str());
}

static void *at(const void *base, int64_t elems, size_t elem_bytes) {
    return (char *)base + elems * (int64_t)elem_bytes;
}

/* lse[b, h, t] <-> stats[(b T + t) Hq + h]: the ragged stats' token-major layout. */
__global__ void stats_lse_kernel(float *lse, float *stats, int B, int T, int Hq, int to_lse) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)B * Hq * T) return;
    const int64_t t = i % T, h = (i / T) % Hq, b = i / ((int64_t)T * Hq);
    float *st = stats + (b * T + t) * Hq + h;
    if (to_lse)
        lse[i] = *st;
    else
        *st = lse[i];
}

static void move_stats(gt_cudnn_attn *a, float *lse, int B, int T, int Hq, int to_lse) {
    const int64_t n = (int64_t)B * Hq * T;
    stats_lse_kernel<<<(unsigned)((n + 255) / 256), 256, 0, a->stream>>>(lse, a->stats, B, T, Hq,
                                                                          to_lse);
    CUDA_CHECK_LAUNCH();
}

/* The number of ragged sequences for seg (0: no document mask), or -1 when seg is not the one
 * gt_cudnn_attn_segments() described (the built-in kernels then run). */
static int docs_for(const gt_cudnn_attn *a, const int32_t *seg, int B, int T) {
    if (!seg) return 0;
    const ragged &r = a->docs;
    return r.seg == seg && r.B == B && r.T == T ? r.n : -1;
}

static int64_t round4(int64_t x) { return (x + 3) / 4 * 4; }

/* Puts the ragged lengths and offsets on the device for rows of ld (qkv) and ow (out) elements
 * and Hq stats; the four arrays each start 16-byte aligned. Once per micro-batch and shape. */
static void upload_offsets(gt_cudnn_attn *a, int64_t ld, int64_t ow, int Hq) {
    ragged &r = a->docs;
    if (r.uploaded_ld == ld && r.uploaded_ow == ow && a->stats_elems >= (size_t)r.B * r.T * Hq)
        return;
    const int64_t sec = round4(r.n + 1);
    if (r.dev_cap < r.n) {
        if (r.dev) CUDA_CHECK(cudaFree(r.dev));
        CUDA_CHECK(cudaMalloc(&r.dev, (size_t)(4 * sec) * sizeof(int32_t)));
        r.dev_cap = r.n;
    }
    std::vector<int32_t> h((size_t)(4 * sec), 0);
    for (int i = 0; i <= r.n; i++) {
        const int64_t row = r.row[(size_t)i];
        if (i < r.n) h[(size_t)i] = r.len[(size_t)i];
        h[(size_t)(sec + i)] = (int32_t)(row * ld);
        h[(size_t)(2 * sec + i)] = (int32_t)(row * ow);
        h[(size_t)(3 * sec + i)] = (int32_t)(row * Hq);
    }
    /* From pageable memory: returns once h has been staged, so h may go out of scope. */
    CUDA_CHECK(cudaMemcpyAsync(r.dev, h.data(), h.size() * sizeof(int32_t),
                               cudaMemcpyHostToDevice, a->stream));
    r.uploaded_ld = ld;
    r.uploaded_ow = ow;
    const size_t stats = (size_t)r.B * r.T * Hq;
    if (a->stats_elems < stats) {
        if (a->stats) CUDA_CHECK(cudaFree(a->stats));
        CUDA_CHECK(cudaMalloc(&a->stats, stats * sizeof(float)));
        a->stats_elems = stats;
    }
}

static void add_ragged(gt_cudnn_attn *a, std::unordered_map<int64_t, void *> &pack) {
    const int64_t sec = round4(a->docs.n + 1);
    int32_t *d = a->docs.dev;
    pack[UID_SEQ_Q] = d;
    pack[UID_SEQ_KV] = d;
    pack[UID_QKV_OFF] = d + sec;
    pack[UID_O_OFF] = d + 2 * sec;
    pack[UID_ST_OFF] = d + 3 * sec;
}

/* The ready plan of a call, or NULL when the built-in kernels must run it. */
static plan *usable_plan(gt_cudnn_attn *a, const int32_t *seg, float scale, int B, int T, int Hq,
                         int Hkv, int D) {
    if (!a) return NULL;
    const int n = docs_for(a, seg, B, T);
    if (n < 0) return NULL;
    plan &p = plan_for(a, shape_key{B, T, Hq, Hkv, D, scale, n});
    if (!p.ok) return NULL;
    if (n) upload_offsets(a, layout_of(p.key).ld, (int64_t)Hq * D, Hq);
    return &p;
}

extern "C" int gt_cudnn_attn_supports(gt_cudnn_attn *a, const int32_t *seg, float scale, int B,
                                      int T, int Hq, int Hkv, int D) {
    return usable_plan(a, seg, scale, B, T, Hq, Hkv, D) != NULL;
}

extern "C" void gt_cudnn_attn_segments(gt_cudnn_attn *a, const int32_t *seg,
                                       const int32_t *seg_host, int B, int T) {
    if (!a) return;
    ragged &r = a->docs;
    r.seg = nullptr;
    r.len.clear();
    r.row.clear();
    std::vector<int32_t> ids; /* run ids of one sequence, to check that each id is one run */
    for (int b = 0; b < B; b++) {
        ids.clear();
        for (int t = 0; t < T; t++) {
            const int32_t id = seg_host[(size_t)b * T + t];
            if (t > 0 && id == seg_host[(size_t)b * T + t - 1]) {
                r.len.back()++;
                continue;
            }
            ids.push_back(id);
            r.len.push_back(1);
            r.row.push_back(b * T + t);
        }
        std::sort(ids.begin(), ids.end());
        if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) return; /* not runs */
    }
    int n = 1;
    while (n < (int)r.len.size()) n *= 2;
    r.len.resize((size_t)n, 0);
    r.row.resize((size_t)n + 1, B * T); /* padding sequences start at the end, length 0 */
    r.n = n;
    r.B = B;
    r.T = T;
    r.seg = seg;
    r.uploaded_ld = r.uploaded_ow = -1;
}

extern "C" int gt_cudnn_attn_fwd(gt_cudnn_attn *a, void *out, void *lse, const void *qkv,
                                 const int32_t *seg, float scale, int B, int T, int Hq, int Hkv,
                                 int D) {
    plan *p = usable_plan(a, seg, scale, B, T, Hq, Hkv, D);
    if (!p) return 0;
    const call_layout l = layout_of(p->key);
    const int G = Hq / Hkv;
    for (int c = 0; c < l.calls; c++) {
        std::unordered_map<int64_t, void *> pack = {
            {UID_Q, at(qkv, l.q_off(c, G, D), 2)},
            {UID_K, at(qkv, l.k_off(c, G, D), 2)},
            {UID_V, at(qkv, l.k_off(c, G, D) + D, 2)},
            {UID_O, at(out, (int64_t)c * l.hq * D, 2)},
            {UID_STATS, p->key.n ? at(a->stats, (int64_t)c * l.hq, 4)
                                 : at(lse, (int64_t)c * l.hq * T, 4)},
        };
        if (p->key.n) add_ragged(a, pack);
        run(a, *p->fwd, pack, "attention forward");
    }
    if (p->key.n) move_stats(a, (float *)lse, B, T, Hq, 1);
    return 1;
}

extern "C" int gt_cudnn_attn_bwd(gt_cudnn_attn *a, void *dqkv, const void *dout, const void *qkv,
                                 const void *out, const void *lse, const int32_t *seg,
                                 float scale, int B, int T, int Hq, int Hkv, int D) {
    plan *p = usable_plan(a, seg, scale, B, T, Hq, Hkv, D);
    if (!p) return 0;
    if (p->key.n) move_stats(a, (float *)lse, B, T, Hq, 0);
    const call_layout l = layout_of(p->key);
    const int G = Hq / Hkv;
    for (int c = 0; c < l.calls; c++) {
        const int64_t qo = l.q_off(c, G, D), ko = l.k_off(c, G, D);
        const int64_t oo = (int64_t)c * l.hq * D;
        std::unordered_map<int64_t, void *> pack = {
            {UID_Q, at(qkv, qo, 2)},       {UID_K, at(qkv, ko, 2)},
            {UID_V, at(qkv, ko + D, 2)},   {UID_O, at(out, oo, 2)},
            {UID_DO, at(dout, oo, 2)},
            {UID_STATS, p->key.n ? at(a->stats, (int64_t)c * l.hq, 4)
                                 : at(lse, (int64_t)c * l.hq * T, 4)},
            {UID_DQ, at(dqkv, qo, 2)},     {UID_DK, at(dqkv, ko, 2)},
            {UID_DV, at(dqkv, ko + D, 2)},
        };
        if (p->key.n) add_ragged(a, pack);
        run(a, *p->bwd, pack, "attention backward");
    }
    return 1;
}

static bool env_off(const char *name) {
    const char *s = getenv(name);
    return s && strcmp(s, "0") == 0;
}

extern "C" gt_cudnn_attn *gt_cudnn_attn_create(cudaStream_t stream) {
    if (env_off("GT_CUDNN_ATTENTION")) return NULL; /* the user's choice: no note */
    const int version = (int)cudnnGetVersion();
    if (version < GT_CUDNN_MIN_VERSION || version / 10000 != CUDNN_MAJOR) {
        if (is_rank0())
            fprintf(stderr,
                    "gemmatron: attention: cuDNN %d at run time, built for %d.%d (need 9.x, at "
                    "least %d); the built-in kernel runs\n",
                    version, CUDNN_MAJOR, CUDNN_MINOR, GT_CUDNN_MIN_VERSION);
        return NULL;
    }
    gt_cudnn_attn *a = new gt_cudnn_attn();
    a->version = version;
    a->deterministic = !env_off("GT_CUDNN_DETERMINISTIC");
    a->workspace = NULL;
    a->workspace_bytes = 0;
    a->stats = NULL;
    a->stats_elems = 0;
    a->stream = stream;
    CUDNN_CHECK(cudnnCreate(&a->handle));
    CUDNN_CHECK(cudnnSetStream(a->handle, stream));
    return a;
}

extern "C" void gt_cudnn_attn_destroy(gt_cudnn_attn *a) {
    if (!a) return;
    a->plans.clear(); /* plans before the handle they were built with */
    if (a->workspace) CUDA_CHECK(cudaFree(a->workspace));
    if (a->stats) CUDA_CHECK(cudaFree(a->stats));
    if (a->docs.dev) CUDA_CHECK(cudaFree(a->docs.dev));
    CUDNN_CHECK(cudnnDestroy(a->handle));
    delete a;
}

extern "C" int gt_cudnn_attn_version(const gt_cudnn_attn *a) { return a ? a->version : 0; }
