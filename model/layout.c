#include "layout.h"

#include <stdio.h>
#include <stdlib.h>

/* Why tp does not split this model, or NULL when it does. */
static const char *tp_problem(const gt_config *cfg, int tp) {
    if (tp < 1) return "tp must be at least 1";
    if (cfg->num_attention_heads % tp) return "num_attention_heads is not divisible by tp";
    if (cfg->intermediate_size % tp) return "intermediate_size is not divisible by tp";
    int kv = cfg->num_key_value_heads;
    if (kv >= tp && kv % tp) return "num_key_value_heads is not divisible by tp";
    if (kv < tp && tp % kv) return "tp is not a multiple of num_key_value_heads";
    int rows = (cfg->vocab_size + tp - 1) / tp;
    if ((int64_t)rows * (tp - 1) >= cfg->vocab_size) return "vocab_size is too small to give every rank rows";
    return NULL;
}

static void list_working_tp(const gt_config *cfg, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int tp = 1; tp <= 64 && used + 8 < len; tp++) {
        if (!tp_problem(cfg, tp)) used += (size_t)snprintf(buf + used, len - used, "%s%d", used ? ", " : "", tp);
    }
}

int gt_layout_init(gt_layout *lay, const gt_config *cfg, int tp_rank, int tp_size, gt_err *err) {
    memset(lay, 0, sizeof *lay);
    const char *why = tp_problem(cfg, tp_size);
    if (why) {
        char ok[256];
        list_working_tp(cfg, ok, sizeof ok);
        return gt_fail(err, "cannot split the model over tp=%d: %s (tp values that work: %s)",
                       tp_size, why, ok);
    }
    lay->tp_rank = tp_rank;
    lay->tp_size = tp_size;
    lay->C = cfg->hidden_size;
    lay->L = cfg->num_hidden_layers;
    lay->D = cfg->head_dim;
    lay->Hq = cfg->num_attention_heads / tp_size;
    int kv = cfg->num_key_value_heads;
    lay->Hkv = kv >= tp_size ? kv / tp_size : 1;
    lay->G = lay->Hq / lay->Hkv;
    lay->F = cfg->intermediate_size / tp_size;
    lay->vocab = cfg->vocab_size;
    lay->V = (cfg->vocab_size + tp_size - 1) / tp_size;
    lay->vstart = (int64_t)tp_rank * lay->V;
    lay->Q = (lay->Hq + 2 * lay->Hkv) * lay->D;

    size_t C = (size_t)lay->C, off = 0;
    lay->wte = off;
    off += (size_t)lay->V * C;
    lay->layer = gt_calloc((size_t)lay->L, sizeof *lay->layer);
    for (int l = 0; l < lay->L; l++) {
        gt_layer_offsets *o = &lay->layer[l];
        o->ln1 = off;
        off += C;
        o->qkv = off;
        off += (size_t)lay->Q * C;
        o->o = off;
        off += C * (size_t)lay->Hq * lay->D;
        o->ln2 = off;
        off += C;
        o->fc1 = off;
        off += 2 * (size_t)lay->F * C;
        o->fc2 = off;
        off += C * (size_t)lay->F;
    }
    lay->lnf = off;
    off += C;
    lay->count = off;
    return 0;
}

void gt_layout_free(gt_layout *lay) {
    free(lay->layer);
    lay->layer = NULL;
}

/* The global KV head that local KV group g of this rank uses. */
static int kv_head_of(const gt_layout *lay, const gt_config *cfg, int g) {
    if (cfg->num_key_value_heads >= lay->tp_size) return lay->tp_rank * lay->Hkv + g;
    int group = cfg->num_attention_heads / cfg->num_key_value_heads;
    return (lay->tp_rank * lay->Hq) / group;
}

typedef struct {
    gt_piece *p;
    int n, cap;
} piece_list;

static void add_piece(piece_list *pl, const char *name, int64_t row0, int64_t nrows, int64_t col0,
                      int64_t ncols, size_t dst) {
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? 2 * pl->cap : 64;
        gt_piece *np = realloc(pl->p, (size_t)pl->cap * sizeof *np);
        if (!np) GT_DIE("out of host memory");
        pl->p = np;
    }
    gt_piece *p = &pl->p[pl->n++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->row0 = row0;
    p->nrows = nrows;
    p->col0 = col0;
    p->ncols = ncols;
    p->dst = dst;
}

static void layer_pieces(piece_list *pl, const gt_layout *lay, const gt_config *cfg, int l) {
    const gt_layer_offsets *o = &lay->layer[l];
    int64_t C = lay->C, D = lay->D;
    char name[96];
#define LNAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
    add_piece(pl, LNAME("input_layernorm.weight"), 0, 1, 0, C, o->ln1);
    for (int g = 0; g < lay->Hkv; g++) {
        size_t base = o->qkv + (size_t)g * (lay->G + 2) * D * C;
        for (int j = 0; j < lay->G; j++) {
            int64_t h = (int64_t)lay->tp_rank * lay->Hq + (int64_t)g * lay->G + j;
            add_piece(pl, LNAME("self_attn.q_proj.weight"), h * D, D, 0, C, base + (size_t)j * D * C);
        }
        int64_t kvh = kv_head_of(lay, cfg, g);
        add_piece(pl, LNAME("self_attn.k_proj.weight"), kvh * D, D, 0, C,
                  base + (size_t)lay->G * D * C);
        add_piece(pl, LNAME("self_attn.v_proj.weight"), kvh * D, D, 0, C,
                  base + (size_t)(lay->G + 1) * D * C);
    }
    int64_t hd = (int64_t)lay->Hq * D;
    add_piece(pl, LNAME("self_attn.o_proj.weight"), 0, C, lay->tp_rank * hd, hd, o->o);
    add_piece(pl, LNAME("post_attention_layernorm.weight"), 0, 1, 0, C, o->ln2);
    int64_t F = lay->F, f0 = (int64_t)lay->tp_rank * F;
    add_piece(pl, LNAME("mlp.gate_proj.weight"), f0, F, 0, C, o->fc1);
    add_piece(pl, LNAME("mlp.up_proj.weight"), f0, F, 0, C, o->fc1 + (size_t)(F * C));
    add_piece(pl, LNAME("mlp.down_proj.weight"), 0, C, f0, F, o->fc2);
#undef LNAME
}

gt_piece *gt_layout_pieces(const gt_layout *lay, const gt_config *cfg, int *count) {
    piece_list pl = {0};
    /* Padding rows of the last rank's vocabulary shard have no HF counterpart. */
    int64_t vrows = cfg->vocab_size - lay->vstart;
    if (vrows > lay->V) vrows = lay->V;
    if (vrows > 0) add_piece(&pl, "model.embed_tokens.weight", lay->vstart, vrows, 0, lay->C, lay->wte);
    for (int l = 0; l < lay->L; l++) layer_pieces(&pl, lay, cfg, l);
    add_piece(&pl, "model.norm.weight", 0, 1, 0, lay->C, lay->lnf);
    *count = pl.n;
    return pl.p;
}

int gt_hf_tensor_dims(const gt_config *cfg, const char *name, int64_t *rows, int64_t *cols, int *ndim) {
    int64_t C = cfg->hidden_size, D = cfg->head_dim, F = cfg->intermediate_size;
    const char *field = name;
    /* "model.layers.N.<module>.<proj>.weight": match on the module path after the layer index. */
    if (strncmp(name, "model.layers.", 13) == 0) {
        field = strchr(name + 13, '.');
        if (!field) return -1;
        field++;
    }
    *ndim = 2;
    if (!strcmp(name, "model.embed_tokens.weight")) *rows = cfg->vocab_size, *cols = C;
    else if (!strcmp(name, "model.norm.weight") || !strcmp(field, "input_layernorm.weight") ||
             !strcmp(field, "post_attention_layernorm.weight"))
        *ndim = 1, *rows = 1, *cols = C;
    else if (!strcmp(field, "self_attn.q_proj.weight")) *rows = cfg->num_attention_heads * D, *cols = C;
    else if (!strcmp(field, "self_attn.k_proj.weight") || !strcmp(field, "self_attn.v_proj.weight"))
        *rows = cfg->num_key_value_heads * D, *cols = C;
    else if (!strcmp(field, "self_attn.o_proj.weight")) *rows = C, *cols = cfg->num_attention_heads * D;
    else if (!strcmp(field, "mlp.gate_proj.weight") || !strcmp(field, "mlp.up_proj.weight"))
        *rows = F, *cols = C;
    else if (!strcmp(field, "mlp.down_proj.weight")) *rows = C, *cols = F;
    else return -1;
    return 0;
}
