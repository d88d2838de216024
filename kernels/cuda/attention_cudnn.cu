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
 * kernels. Causal mask: top-left diagonal (T_q = T_kv). */
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <cstdio>
#include <cstdlib>
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

enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV };

namespace {

struct shape_key {
    int B, T, Hq, Hkv, D;
    float scale;
    bool operator==(const shape_key &o) const {
        return B == o.B && T == o.T && Hq == o.Hq && Hkv == o.Hkv && D == o.D && scale == o.scale;
    }
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
    int version;
    bool deterministic;
    std::vector<plan> plans; /* a handful of shapes per run: a linear search is enough */
    void *workspace;         /* one buffer for every plan (all work is on one stream) */
    int64_t workspace_bytes;
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

static fe::error_t build_fwd(gt_cudnn_attn *a, plan &p, const qkv_views &v) {
    p.fwd = new_graph();
    fe::graph::Graph &g = *p.fwd;
    auto q = tensor(g, "Q", UID_Q, v.qd, v.qst);
    auto k = tensor(g, "K", UID_K, v.kd, v.kst);
    auto vv = tensor(g, "V", UID_V, v.kd, v.kst);
    auto opt = fe::graph::SDPA_attributes()
                   .set_name("attention_fwd")
                   .set_generate_stats(true)
                   .set_causal_mask(true)
                   .set_attn_scale(p.key.scale);
    auto outs = g.sdpa(q, k, vv, opt);
    outs[0]->set_output(true).set_uid(UID_O).set_dim(v.od).set_stride(v.ost);
    outs[1]->set_output(true).set_uid(UID_STATS).set_data_type(fe::DataType_t::FLOAT)
        .set_dim(v.sd).set_stride(v.sst);
    return finish(g, a->handle, &p.ws_fwd);
}

static fe::error_t build_bwd(gt_cudnn_attn *a, plan &p, const qkv_views &v) {
    p.bwd = new_graph();
    fe::graph::Graph &g = *p.bwd;
    auto q = tensor(g, "Q", UID_Q, v.qd, v.qst);
    auto k = tensor(g, "K", UID_K, v.kd, v.kst);
    auto vv = tensor(g, "V", UID_V, v.kd, v.kst);
    auto o = tensor(g, "O", UID_O, v.od, v.ost);
    auto dout = tensor(g, "dO", UID_DO, v.od, v.ost);
    auto stats = tensor(g, "Stats", UID_STATS, v.sd, v.sst);
    stats->set_data_type(fe::DataType_t::FLOAT);
    auto opt = fe::graph::SDPA_backward_attributes()
                   .set_name("attention_bwd")
                   .set_causal_mask(true)
                   .set_attn_scale(p.key.scale)
                   .set_deterministic_algorithm(a->deterministic);
    auto grads = g.sdpa_backward(q, k, vv, o, dout, stats, opt);
    grads[0]->set_output(true).set_uid(UID_DQ).set_dim(v.qd).set_stride(v.qst);
    grads[1]->set_output(true).set_uid(UID_DK).set_dim(v.kd).set_stride(v.kst);
    grads[2]->set_output(true).set_uid(UID_DV).set_dim(v.kd).set_stride(v.kst);
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
                    "gemmatron: attention B=%d T=%d Hq=%d Hkv=%d D=%d: cuDNN declines (%s); the "
                    "built-in kernel runs it\n",
                    key.B, key.T, key.Hq, key.Hkv, key.D, e.get_message().c_str());
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

extern "C" int gt_cudnn_attn_supports(gt_cudnn_attn *a, float scale, int B, int T, int Hq,
                                      int Hkv, int D) {
    return a && plan_for(a, shape_key{B, T, Hq, Hkv, D, scale}).ok;
}

extern "C" int gt_cudnn_attn_fwd(gt_cudnn_attn *a, void *out, void *lse, const void *qkv,
                                 float scale, int B, int T, int Hq, int Hkv, int D) {
    if (!a) return 0;
    const shape_key key = {B, T, Hq, Hkv, D, scale};
    plan &p = plan_for(a, key);
    if (!p.ok) return 0;
    const call_layout l = layout_of(key);
    const int G = Hq / Hkv;
    for (int c = 0; c < l.calls; c++) {
        std::unordered_map<int64_t, void *> pack = {
            {UID_Q, at(qkv, l.q_off(c, G, D), 2)},
            {UID_K, at(qkv, l.k_off(c, G, D), 2)},
            {UID_V, at(qkv, l.k_off(c, G, D) + D, 2)},
            {UID_O, at(out, (int64_t)c * l.hq * D, 2)},
            {UID_STATS, at(lse, (int64_t)c * l.hq * T, 4)},
        };
        run(a, *p.fwd, pack, "attention forward");
    }
    return 1;
}

extern "C" int gt_cudnn_attn_bwd(gt_cudnn_attn *a, void *dqkv, const void *dout, const void *qkv,
                                 const void *out, const void *lse, float scale, int B, int T,
                                 int Hq, int Hkv, int D) {
    if (!a) return 0;
    const shape_key key = {B, T, Hq, Hkv, D, scale};
    plan &p = plan_for(a, key);
    if (!p.ok) return 0;
    const call_layout l = layout_of(key);
    const int G = Hq / Hkv;
    for (int c = 0; c < l.calls; c++) {
        const int64_t qo = l.q_off(c, G, D), ko = l.k_off(c, G, D);
        const int64_t oo = (int64_t)c * l.hq * D;
        std::unordered_map<int64_t, void *> pack = {
            {UID_Q, at(qkv, qo, 2)},       {UID_K, at(qkv, ko, 2)},
            {UID_V, at(qkv, ko + D, 2)},   {UID_O, at(out, oo, 2)},
            {UID_DO, at(dout, oo, 2)},     {UID_STATS, at(lse, (int64_t)c * l.hq * T, 4)},
            {UID_DQ, at(dqkv, qo, 2)},     {UID_DK, at(dqkv, ko, 2)},
            {UID_DV, at(dqkv, ko + D, 2)},
        };
        run(a, *p.bwd, pack, "attention backward");
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
    CUDNN_CHECK(cudnnCreate(&a->handle));
    CUDNN_CHECK(cudnnSetStream(a->handle, stream));
    return a;
}

extern "C" void gt_cudnn_attn_destroy(gt_cudnn_attn *a) {
    if (!a) return;
    a->plans.clear(); /* plans before the handle they were built with */
    if (a->workspace) CUDA_CHECK(cudaFree(a->workspace));
    CUDNN_CHECK(cudnnDestroy(a->handle));
    delete a;
}

extern "C" int gt_cudnn_attn_version(const gt_cudnn_attn *a) { return a ? a->version : 0; }
