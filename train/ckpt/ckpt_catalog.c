/* The catalog of a checkpoint: its files, the tensors in each, their dtypes and byte offsets. It
 * depends on the model config and the dtypes only (never on tp or dp), so every rank computes the
 * same one and can write its slices without asking anybody where they go. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../model/safetensors.h"
#include "ckpt_internal.h"

const char *const ck_suffix[CK_KINDS] = {"", ".master", ".exp_avg", ".exp_avg_sq"};

/* The HF tensors of one decoder layer, in the order they are stored. */
static const char *const layer_field[] = {
    "input_layernorm.weight", "self_attn.q_proj.weight",       "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "self_attn.o_proj.weight",      "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",    "mlp.up_proj.weight",           "mlp.down_proj.weight"};
#define NFIELD ((int)(sizeof layer_field / sizeof layer_field[0]))

int ck_tensor_index(const gt_config *cfg, const char *name) {
    int L = cfg->num_hidden_layers;
    if (!strcmp(name, "model.embed_tokens.weight")) return 0;
    if (!strcmp(name, "model.norm.weight")) return 1 + NFIELD * L;
    if (strncmp(name, "model.layers.", 13)) return -1;
    char *end;
    long l = strtol(name + 13, &end, 10);
    if (end == name + 13 || *end != '.' || l < 0 || l >= L) return -1;
    for (int f = 0; f < NFIELD; f++)
        if (!strcmp(end + 1, layer_field[f])) return 1 + NFIELD * (int)l + f;
    return -1;
}

static void tensor_name(const gt_config *cfg, int i, char *buf, size_t len) {
    int L = cfg->num_hidden_layers;
    if (i == 0) snprintf(buf, len, "model.embed_tokens.weight");
    else if (i == 1 + NFIELD * L) snprintf(buf, len, "model.norm.weight");
    else snprintf(buf, len, "model.layers.%d.%s", (i - 1) / NFIELD, layer_field[(i - 1) % NFIELD]);
}

const ck_entry *ck_entry_of(const ck_catalog *c, int kind, int tensor) {
    return &c->e[kind * c->ntensors + tensor];
}

void ck_shard_name(char *buf, size_t len, int i, int n) {
    if (n == 1) snprintf(buf, len, "model.safetensors");
    else snprintf(buf, len, "model-%05d-of-%05d.safetensors", i + 1, n);
}

static uint64_t entry_bytes(const ck_catalog *c, int i, gt_dtype dt) {
    return (uint64_t)(c->rows[i] * c->cols[i]) * gt_dtype_size(dt);
}

/* Shards of at most `limit` bytes, greedily in tensor order: first[s] = first tensor of shard s. */
static int plan_shards(const ck_catalog *c, gt_dtype wdtype, uint64_t limit, int *first) {
    int n = 0;
    uint64_t used = 0;
    for (int i = 0; i < c->ntensors; i++) {
        uint64_t b = entry_bytes(c, i, wdtype);
        if (n == 0 || (used > 0 && used + b > limit)) {
            first[n++] = i;
            used = 0;
        }
        used += b;
    }
    first[n] = c->ntensors;
    return n;
}

/* Computes the header of file f from the given entries (in order) and their offsets. */
static int finish_file(ck_catalog *c, int f, ck_entry **ents, int n, gt_err *err) {
    gt_st_entry *st = gt_calloc((size_t)n, sizeof *st);
    uint64_t *off = gt_calloc((size_t)n, sizeof *off);
    for (int k = 0; k < n; k++) {
        int i = (int)(ents[k] - c->e) % c->ntensors;
        st[k] = (gt_st_entry){ents[k]->name, ents[k]->dtype, c->ndim[i], {0}, NULL};
        st[k].shape[0] = c->ndim[i] == 1 ? c->cols[i] : c->rows[i];
        st[k].shape[1] = c->cols[i];
    }
    ck_file *file = &c->files[f];
    int rc = gt_st_header(file->name, st, n, &file->header, &file->hbytes, off, &file->size, err);
    for (int k = 0; rc == 0 && k < n; k++) {
        ents[k]->file = f;
        ents[k]->offset = off[k];
    }
    free(off);
    free(st);
    return rc;
}

static void fill_tensors(ck_catalog *c, const gt_config *cfg) {
    c->ntensors = 2 + NFIELD * cfg->num_hidden_layers;
    size_t n = (size_t)c->ntensors;
    c->tname = gt_calloc(n, sizeof *c->tname);
    c->rows = gt_calloc(n, sizeof *c->rows);
    c->cols = gt_calloc(n, sizeof *c->cols);
    c->ndim = gt_calloc(n, sizeof *c->ndim);
    c->e = gt_calloc(n * CK_KINDS, sizeof *c->e);
    for (int i = 0; i < c->ntensors; i++) {
        tensor_name(cfg, i, c->tname[i], sizeof c->tname[i]);
        GT_ASSERT(!gt_hf_tensor_dims(cfg, c->tname[i], &c->rows[i], &c->cols[i], &c->ndim[i]),
                  "no HF shape for %s", c->tname[i]);
        for (int k = 0; k < CK_KINDS; k++)
            snprintf(c->e[k * c->ntensors + i].name, CK_NAME_LEN, "%s%s", c->tname[i], ck_suffix[k]);
    }
}

int ck_catalog_build(ck_catalog *c, const gt_config *cfg, gt_dtype wdtype, int sdtype,
                     uint64_t shard_bytes, gt_err *err) {
    memset(c, 0, sizeof *c);
    c->fp8_file = -1;
    fill_tensors(c, cfg);
    int *first = gt_calloc((size_t)c->ntensors + 1, sizeof *first);
    int nshards = plan_shards(c, wdtype, shard_bytes ? shard_bytes : GT_CKPT_SHARD_BYTES, first);
    c->has_state = sdtype >= 0;
    c->model_files = nshards;
    c->nfiles = nshards + c->has_state;
    c->files = gt_calloc((size_t)c->nfiles, sizeof *c->files);
    ck_entry **ents = gt_calloc((size_t)c->ntensors * CK_KINDS, sizeof *ents);
    int rc = 0;
    for (int s = 0; s < nshards && rc == 0; s++) {
        ck_shard_name(c->files[s].name, sizeof c->files[s].name, s, nshards);
        int n = 0;
        for (int i = first[s]; i < first[s + 1]; i++) {
            c->e[i].dtype = wdtype;
            ents[n++] = &c->e[i];
        }
        rc = finish_file(c, s, ents, n, err);
    }
    if (rc == 0 && c->has_state) {
        /* The three state tensors of one HF tensor side by side: a rank reads them together. */
        snprintf(c->files[nshards].name, sizeof c->files[nshards].name, "optimizer.safetensors");
        int n = 0;
        for (int i = 0; i < c->ntensors; i++) {
            for (int k = CK_MASTER; k < CK_KINDS; k++) {
                c->e[k * c->ntensors + i].dtype = (gt_dtype)sdtype;
                ents[n++] = &c->e[k * c->ntensors + i];
            }
        }
        rc = finish_file(c, nshards, ents, n, err);
    }
    /* FP8 state, when the model has it, is one more file: ck_catalog_add_fp8 (train/ckpt/ckpt_fp8.c). */
    free(ents);
    free(first);
    if (rc) ck_catalog_free(c);
    return rc;
}

void ck_catalog_free(ck_catalog *c) {
    for (int f = 0; f < c->nfiles; f++) free(c->files[f].header);
    free(c->files);
    free(c->tname);
    free(c->rows);
    free(c->cols);
    free(c->ndim);
    free(c->e);
    memset(c, 0, sizeof *c);
}

char *ck_index_json(const ck_catalog *c) {
    if (c->model_files == 1) return NULL;
    json_t *root = json_object(), *md = json_object(), *wm = json_object();
    GT_ASSERT(root && md && wm, "jansson: out of memory");
    uint64_t total = 0;
    for (int i = 0; i < c->ntensors; i++) {
        const ck_entry *e = ck_entry_of(c, CK_WEIGHT, i);
        total += entry_bytes(c, i, e->dtype);
        json_object_set_new(wm, e->name, json_string(c->files[e->file].name));
    }
    json_object_set_new(md, "total_size", json_integer((json_int_t)total));
    json_object_set_new(root, "metadata", md);
    json_object_set_new(root, "weight_map", wm);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    GT_ASSERT(text, "jansson: json_dumps failed");
    return text;
}
