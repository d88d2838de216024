#include "generate_profile.h"

#include <stdio.h>
#include <stdlib.h>

#include "../../model/fp8.h"
#include "../../model/linear.h"
#include "../metrics/op_profile.h"

/* Bytes of the weights the step's GEMMs read: every layer's four and the lm_head, BF16 (1 byte
 * per element where the layer GEMMs run in FP8). */
static double gemm_weight_bytes(const gt_model *m) {
    double bytes = 0;
    for (int s = 0; s <= GT_GEMMS * m->lay.L; s++) {
        int ic, oc;
        size_t off;
        gt_linear_dims(m, s, &ic, &oc, &off);
        int fp8 = m->fp8 && s < m->fp8->slots && m->fp8->fp8_used[s];
        bytes += (double)ic * oc * (fp8 ? 1.0 : (double)m->ops->size[GT_ACT]);
    }
    return bytes;
}

void gt_generate_profile(gt_decoder *d, int B, double step_ms, int print) {
    gt_model *m = d->m;
    const gt_ops *ops = m->ops;
    gt_backend *be = m->be;
    int graphs = d->graphs;
    gt_decoder_graphs(d, 0); /* with the real ops: it destroys the captured graphs */
    int32_t *tok = gt_calloc((size_t)B, sizeof *tok), *pos = gt_malloc((size_t)B * sizeof *pos);
    for (int b = 0; b < B; b++) pos[b] = d->Tmax - 1;
    /* one direct step first: its collectives bring the ranks together again after rank 0 printed */
    gt_decoder_step(d, B, tok, pos, NULL, NULL);
    gt_op_profile prof;
    gt_op_profile_init(&prof, ops, be);
    m->ops = &prof.ops;
    m->be = (gt_backend *)&prof;
    if (m->tp) m->tp->timed = 1, m->tp->seconds = 0, m->tp->bus_bytes = 0;
    gt_decoder_step(d, B, tok, pos, NULL, NULL);
    double comm = m->tp ? m->tp->seconds : 0;
    if (m->tp) m->tp->timed = 0;
    m->ops = ops;
    m->be = be;
    gt_decoder_graphs(d, graphs);
    free(tok), free(pos);
    if (!print) return;
    double total = comm;
    for (int i = 0; i < GT_PROF_COUNT; i++) total += prof.seconds[i];
    fprintf(stderr, "gemmatron generate: profile of one decode step, batch %d, %d keys (ops timed one by one)\n", B,
            d->Tmax);
    fprintf(stderr, "%-17s %6s %9s %6s\n", "op class", "calls", "ms/step", "share");
    for (int i = 0; i < GT_PROF_COUNT; i++) {
        if (!prof.calls[i]) continue;
        fprintf(stderr, "%-17s %6ld %9.3f %5.1f%%", gt_op_profile_name(i), prof.calls[i], 1e3 * prof.seconds[i],
                100 * prof.seconds[i] / total);
        if (i == GT_PROF_MATMUL_FWD && prof.seconds[i] > 0) { /* FP8 forward GEMMs are filed here too */
            double bytes = gemm_weight_bytes(m);
            fprintf(stderr, "  weights %.3g GB, %.3g TB/s", bytes / 1e9, bytes / prof.seconds[i] / 1e12);
        }
        fputc('\n', stderr);
    }
    if (comm > 0) fprintf(stderr, "%-17s %6s %9.3f %5.1f%%\n", "communication (tp)", "", 1e3 * comm, 100 * comm / total);
    fprintf(stderr, "profiled step %.3f ms (synchronized per op)", 1e3 * total);
    if (step_ms > 0) fprintf(stderr, " vs %.3f ms unprofiled", step_ms);
    fputc('\n', stderr);
}
