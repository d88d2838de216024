/* trainer_state.json: the part of a checkpoint that is not tensors.
 *
 * {"format": "gemmatron-checkpoint", "version": 1,
 *  "step": 500, "skipped_steps": 0, "tokens_seen": 1024000,
 *  "data": {"epoch": 0, "index": 2000, "seq_len": 512, "shuffle": true},
 *  "rng": {"seed": 42, "shuffle_seed": 1234},
 *  "schedule": {"kind": "cosine", "lr": 1e-5, "min_lr_ratio": 0, "warmup_steps": 10,
 *               "steps": 1000, "lr_at_step": 9.1e-6},
 *  "optimizer": {"name": "adamw", "step": 500, "skipped": 0, "state_dtype": "F32"},
 *  "grid": {"tp": 2, "dp": 4},
 *  "weights_dtype": "BF16",
 *  "fp8": {"file": "fp8_state.safetensors", "tensors": 24, "history_len": 1024, "algo": "max",
 *          "margin": 0.0},                  (null when the run did not train in FP8)
 *  "files": [{"name": "model.safetensors", "bytes": 123}, ...],
 *  "run_config": "<the resolved run config, YAML>"}
 *
 * The file is written last, so its presence with matching file sizes marks a complete checkpoint.
 * Reals are written with 17 significant digits: they read back bit-exact. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt_internal.h"

static const char *const kind_name[] = {"cosine", "linear", "constant"};

static json_t *data_json(const gt_ckpt_state *st) {
    return json_pack("{s:I, s:I, s:I, s:b}", "epoch", (json_int_t)st->data_pos.epoch, "index",
                     (json_int_t)st->data_pos.index, "seq_len", (json_int_t)st->seq_len, "shuffle", st->shuffle);
}

static json_t *schedule_json(const gt_ckpt_state *st) {
    const gt_lr_schedule *s = &st->sched;
    return json_pack("{s:s, s:f, s:f, s:I, s:I, s:f}", "kind", kind_name[s->kind], "lr", s->lr, "min_lr_ratio",
                     s->min_lr_ratio, "warmup_steps", (json_int_t)s->warmup, "steps", (json_int_t)s->steps,
                     "lr_at_step", st->step > 0 ? gt_lr_at(s, st->step) : 0.0);
}

static json_t *fp8_json(const ck_catalog *c) {
    if (c->fp8_file < 0) return json_null();
    const gt_ckpt_fp8 *f = &c->fp8;
    return json_pack("{s:s, s:i, s:i, s:s, s:f}", "file", CK_FP8_FILE, "tensors", f->count, "history_len",
                     f->history_len, "algo", ck_fp8_algo_name(f->algo), "margin", f->margin);
}

static json_t *files_json(const ck_catalog *c) {
    json_t *a = json_array();
    GT_ASSERT(a, "jansson: out of memory");
    for (int f = 0; f < c->nfiles; f++)
        json_array_append_new(a, json_pack("{s:s, s:I}", "name", c->files[f].name, "bytes", (json_int_t)c->files[f].size));
    return a;
}

char *ck_state_json(const gt_ckpt_state *st, const ck_catalog *c, gt_dtype wdtype) {
    json_t *o = json_object();
    GT_ASSERT(o, "jansson: out of memory");
    const char *sdt = c->has_state ? gt_dtype_name(ck_entry_of(c, CK_MASTER, 0)->dtype) : "none";
    json_object_set_new(o, "format", json_string(GT_CKPT_FORMAT));
    json_object_set_new(o, "version", json_integer(GT_CKPT_VERSION));
    json_object_set_new(o, "step", json_integer(st->step));
    json_object_set_new(o, "skipped_steps", json_integer(st->skipped));
    json_object_set_new(o, "tokens_seen", json_real(st->tokens_seen));
    json_object_set_new(o, "data", data_json(st));
    json_object_set_new(o, "rng", json_pack("{s:I, s:I}", "seed", (json_int_t)st->seed, "shuffle_seed",
                                            (json_int_t)st->shuffle_seed));
    json_object_set_new(o, "schedule", schedule_json(st));
    json_object_set_new(o, "optimizer", json_pack("{s:s, s:i, s:i, s:s}", "name", "adamw", "step", st->opt_step,
                                                  "skipped", st->opt_skipped, "state_dtype", sdt));
    json_object_set_new(o, "grid", json_pack("{s:i, s:i}", "tp", st->tp, "dp", st->dp));
    json_object_set_new(o, "weights_dtype", json_string(gt_dtype_name(wdtype)));
    json_object_set_new(o, "fp8", fp8_json(c));
    json_object_set_new(o, "files", files_json(c));
    json_object_set_new(o, "run_config", st->run_config ? json_string(st->run_config) : json_null());
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    GT_ASSERT(text, "jansson: json_dumps failed");
    return text;
}

/* ---- reading ---- */

typedef struct {
    const char *path;
    gt_err *err;
} reader;

/* Member key of obj with the wanted type: 'o' object, 's' string, 'a' array, 'i' integer,
 * 'n' number, 'b' boolean. where names the enclosing object in the message ("" at the top). */
static json_t *member(reader *r, json_t *obj, const char *where, const char *key, char type) {
    json_t *v = json_object_get(obj, key);
    int ok = v && ((type == 'o' && json_is_object(v)) || (type == 's' && json_is_string(v)) ||
                   (type == 'a' && json_is_array(v)) || (type == 'i' && json_is_integer(v)) ||
                   (type == 'n' && json_is_number(v)) || (type == 'b' && json_is_boolean(v)));
    if (ok) return v;
    const char *want = type == 'o' ? "an object" : type == 's' ? "a string" : type == 'a' ? "an array"
                     : type == 'i' ? "an integer" : type == 'n' ? "a number" : "a boolean";
    gt_fail(r->err, "%s: %s%s%s is missing or not %s", r->path, where, *where ? "." : "", key, want);
    return NULL;
}

static int get_ll(reader *r, json_t *obj, const char *where, const char *key, long long *out) {
    json_t *v = member(r, obj, where, key, 'i');
    if (!v) return -1;
    *out = (long long)json_integer_value(v);
    return 0;
}

static int get_int(reader *r, json_t *obj, const char *where, const char *key, int *out) {
    long long v;
    if (get_ll(r, obj, where, key, &v)) return -1;
    if (v < 0 || v > 0x7fffffff) return gt_fail(r->err, "%s: %s.%s = %lld is out of range", r->path, where, key, v);
    *out = (int)v;
    return 0;
}

static int get_real(reader *r, json_t *obj, const char *where, const char *key, double *out) {
    json_t *v = member(r, obj, where, key, 'n');
    if (!v) return -1;
    *out = json_number_value(v);
    return 0;
}

static int get_bool(reader *r, json_t *obj, const char *where, const char *key, int *out) {
    json_t *v = member(r, obj, where, key, 'b');
    if (!v) return -1;
    *out = json_is_true(v);
    return 0;
}

static int parse_schedule(reader *r, json_t *o, gt_lr_schedule *s) {
    json_t *k = member(r, o, "schedule", "kind", 's');
    if (!k) return -1;
    if (gt_lr_kind_parse(json_string_value(k), &s->kind))
        return gt_fail(r->err, "%s: schedule.kind '%s' is unknown", r->path, json_string_value(k));
    return get_real(r, o, "schedule", "lr", &s->lr) || get_real(r, o, "schedule", "min_lr_ratio", &s->min_lr_ratio) ||
           get_ll(r, o, "schedule", "warmup_steps", &s->warmup) || get_ll(r, o, "schedule", "steps", &s->steps)
               ? -1 : 0;
}

static int parse_files(reader *r, json_t *a, ck_file_size **files, int *n) {
    size_t count = json_array_size(a);
    *files = gt_calloc(count + 1, sizeof **files);
    *n = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *f = json_array_get(a, i), *nm;
        long long bytes;
        if (!json_is_object(f) || !(nm = member(r, f, "files[]", "name", 's')) ||
            get_ll(r, f, "files[]", "bytes", &bytes))
            return gt_fail(r->err, "%s: files[%zu] is not {\"name\": ..., \"bytes\": ...}", r->path, i);
        const char *s = json_string_value(nm);
        if (!s[0] || strchr(s, '/') || strlen(s) >= sizeof(*files)[0].name || bytes < 0)
            return gt_fail(r->err, "%s: files[%zu]: invalid entry '%s'", r->path, i, s);
        snprintf((*files)[*n].name, sizeof(*files)[0].name, "%s", s);
        (*files)[(*n)++].bytes = (uint64_t)bytes;
    }
    return 0;
}

static int parse_header(reader *r, json_t *root) {
    json_t *fmt = json_object_get(root, "format"), *ver = json_object_get(root, "version");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), GT_CKPT_FORMAT))
        return gt_fail(r->err, "%s: not a gemmatron trainer state (format is not \"%s\")", r->path, GT_CKPT_FORMAT);
    if (!json_is_integer(ver) || json_integer_value(ver) != GT_CKPT_VERSION)
        return gt_fail(r->err, "%s: checkpoint format version %lld, this gemmatron reads version %d", r->path,
                       json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL, GT_CKPT_VERSION);
    return 0;
}

/* "fp8": absent or null (no FP8 state), or the object fp8_json writes. */
static int parse_fp8(reader *r, json_t *root, gt_ckpt_fp8 *f) {
    memset(f, 0, sizeof *f);
    json_t *o = json_object_get(root, "fp8"), *file, *algo;
    if (!o || json_is_null(o)) return 0;
    if (!json_is_object(o)) return gt_fail(r->err, "%s: fp8 is neither an object nor null", r->path);
    if (!(file = member(r, o, "fp8", "file", 's')) || get_int(r, o, "fp8", "tensors", &f->count) ||
        get_int(r, o, "fp8", "history_len", &f->history_len) || !(algo = member(r, o, "fp8", "algo", 's')) ||
        get_real(r, o, "fp8", "margin", &f->margin))
        return -1;
    if (strcmp(json_string_value(file), CK_FP8_FILE))
        return gt_fail(r->err, "%s: fp8.file is '%s', expected \"%s\"", r->path, json_string_value(file), CK_FP8_FILE);
    const char *a = json_string_value(algo);
    if (strcmp(a, "max") && strcmp(a, "most_recent"))
        return gt_fail(r->err, "%s: fp8.algo '%s' is not max or most_recent", r->path, a);
    if (f->count < 1 || f->history_len < 1)
        return gt_fail(r->err, "%s: fp8: %d tensors with histories of length %d", r->path, f->count, f->history_len);
    f->algo = strcmp(a, "max") ? GT_AMAX_MOST_RECENT : GT_AMAX_MAX;
    f->present = 1;
    return 0;
}

static int parse_sections(reader *r, json_t *root, gt_ckpt_state *st, gt_dtype *wdtype) {
    json_t *d, *rng, *sch, *opt, *grid, *wd;
    long long epoch, index;
    if (get_ll(r, root, "", "step", &st->step) || get_ll(r, root, "", "skipped_steps", &st->skipped) ||
        get_real(r, root, "", "tokens_seen", &st->tokens_seen) || !(d = member(r, root, "", "data", 'o')) ||
        get_ll(r, d, "data", "epoch", &epoch) || get_ll(r, d, "data", "index", &index) ||
        get_ll(r, d, "data", "seq_len", &st->seq_len) || get_bool(r, d, "data", "shuffle", &st->shuffle) ||
        !(rng = member(r, root, "", "rng", 'o')) || get_ll(r, rng, "rng", "seed", &st->seed) ||
        get_ll(r, rng, "rng", "shuffle_seed", &st->shuffle_seed) ||
        !(sch = member(r, root, "", "schedule", 'o')) || parse_schedule(r, sch, &st->sched) ||
        !(opt = member(r, root, "", "optimizer", 'o')) || get_int(r, opt, "optimizer", "step", &st->opt_step) ||
        get_int(r, opt, "optimizer", "skipped", &st->opt_skipped) ||
        !(grid = member(r, root, "", "grid", 'o')) || get_int(r, grid, "grid", "tp", &st->tp) ||
        get_int(r, grid, "grid", "dp", &st->dp) || !(wd = member(r, root, "", "weights_dtype", 's')))
        return -1;
    st->data_pos = (gt_loader_pos){epoch, index};
    if (st->step < 0 || st->skipped < 0 || st->skipped > st->step || epoch < 0 || index < 0)
        return gt_fail(r->err, "%s: inconsistent counters (step %lld, skipped %lld, data epoch %lld index %lld)",
                       r->path, st->step, st->skipped, epoch, index);
    gt_dtype dt;
    if (gt_dtype_parse(json_string_value(wd), &dt) || (dt != GT_BF16 && dt != GT_F32))
        return gt_fail(r->err, "%s: weights_dtype '%s' is not BF16 or F32", r->path, json_string_value(wd));
    if (wdtype) *wdtype = dt;
    if (parse_fp8(r, root, &st->fp8)) return -1;
    json_t *rc = json_object_get(root, "run_config");
    if (json_is_string(rc)) {
        st->run_config = strdup(json_string_value(rc));
        GT_ASSERT(st->run_config, "out of host memory");
    }
    return 0;
}

int ck_state_load(const char *path, gt_ckpt_state *st, ck_file_size **files, int *nfiles, gt_dtype *wdtype,
                  gt_err *err) {
    memset(st, 0, sizeof *st);
    if (files) *files = NULL;
    char *text;
    if (gt_read_text(path, &text, err)) return -1;
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    free(text);
    if (!root) return gt_fail(err, "%s: not valid JSON: line %d: %s", path, je.line, je.text);
    reader r = {path, err};
    int rc = json_is_object(root) ? 0 : gt_fail(err, "%s: not a JSON object", path);
    if (rc == 0) rc = parse_header(&r, root);
    if (rc == 0) rc = parse_sections(&r, root, st, wdtype);
    json_t *fa = rc == 0 && files ? member(&r, root, "", "files", 'a') : NULL;
    if (rc == 0 && files) rc = fa ? parse_files(&r, fa, files, nfiles) : -1;
    json_decref(root);
    if (rc) {
        gt_ckpt_state_free(st);
        if (files) {
            free(*files);
            *files = NULL;
        }
    }
    return rc;
}

void gt_ckpt_state_free(gt_ckpt_state *st) {
    free(st->run_config);
    st->run_config = NULL;
}
