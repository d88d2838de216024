/* Reading the run config from YAML (libyaml's document API, which keeps line numbers for messages)
 * and from --set values. Nested mappings name sections: `optim: {lr: 1e-4}` sets "optim.lr". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <yaml.h>

#include "run_config_schema.h"

/* Keys already set by this file: a repeated key is an error, not a silent override. */
typedef struct {
    const char *path;
    yaml_document_t *doc;
    char seen[64][128];
    int nseen;
} yaml_walk;

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static const char *scalar_text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int mark_seen(yaml_walk *w, const char *name, const yaml_node_t *key, gt_err *err) {
    for (int i = 0; i < w->nseen; i++) {
        if (!strcmp(w->seen[i], name)) {
            return gt_fail(err, "%s: line %d: %s: the key appears twice", w->path, line_of(key), name);
        }
    }
    if (w->nseen < 64) snprintf(w->seen[w->nseen++], sizeof w->seen[0], "%s", name);
    return 0;
}

/* A value node as an rc_value: a scalar, or a sequence of scalars. */
static int node_value(yaml_walk *w, const rc_field *f, yaml_node_t *n, rc_scalar *items, int cap,
                      rc_value *v, gt_err *err) {
    memset(v, 0, sizeof *v);
    v->items = items;
    if (n->type == YAML_SCALAR_NODE) {
        items[0] = (rc_scalar){scalar_text(n), n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE};
        v->count = 1;
        return 0;
    }
    if (n->type == YAML_MAPPING_NODE) {
        return gt_fail(err, "%s: line %d: %s: expected a value, got a mapping", w->path, line_of(n),
                       f->key);
    }
    v->is_list = 1;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *c = yaml_document_get_node(w->doc, *it);
        if (!c || c->type != YAML_SCALAR_NODE) {
            return gt_fail(err, "%s: line %d: %s: expected a list of plain values", w->path,
                           line_of(n), f->key);
        }
        if (v->count == cap) return gt_fail(err, "%s: line %d: %s: more than %d items", w->path, line_of(n), f->key, cap);
        items[v->count++] = (rc_scalar){scalar_text(c), c->data.scalar.style == YAML_PLAIN_SCALAR_STYLE};
    }
    return 0;
}

static int set_from_node(gt_run_config *rc, yaml_walk *w, const rc_field *f, yaml_node_t *n, gt_err *err) {
    enum { CAP = 4096 };
    rc_scalar *items = gt_malloc(CAP * sizeof *items);
    rc_value v;
    char where[512];
    snprintf(where, sizeof where, "%s: line %d", w->path, line_of(n));
    int rc_ = node_value(w, f, n, items, CAP, &v, err);
    if (rc_ == 0) rc_ = gt_rc_assign(rc, f, &v, where, err);
    free(items);
    return rc_;
}

static int walk_mapping(gt_run_config *rc, yaml_walk *w, yaml_node_t *map, const char *prefix, gt_err *err);

static int walk_pair(gt_run_config *rc, yaml_walk *w, yaml_node_pair_t *p, const char *prefix, gt_err *err) {
    yaml_node_t *k = yaml_document_get_node(w->doc, p->key), *v = yaml_document_get_node(w->doc, p->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE) {
        return gt_fail(err, "%s: line %d: a key must be a plain name", w->path, k ? line_of(k) : 0);
    }
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", scalar_text(k));
    if (mark_seen(w, name, k, err)) return -1;
    const rc_field *f = gt_rc_find(name);
    if (f) return set_from_node(rc, w, f, v, err);
    if (gt_rc_is_section(name)) {
        if (v->type != YAML_MAPPING_NODE) {
            return gt_fail(err, "%s: line %d: %s: expected a section (a mapping of keys)", w->path,
                           line_of(v), name);
        }
        return walk_mapping(rc, w, v, name, err);
    }
    char known[512];
    gt_rc_section_keys(name, known, sizeof known);
    return gt_fail(err, "%s: line %d: unknown key '%s' (%s has: %s)", w->path, line_of(k), name,
                   prefix[0] ? prefix : "the top level", known);
}

static int walk_mapping(gt_run_config *rc, yaml_walk *w, yaml_node_t *map, const char *prefix, gt_err *err) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        if (walk_pair(rc, w, p, prefix, err)) return -1;
    }
    return 0;
}

static int load_doc(yaml_document_t *doc, FILE *f, const char *path, gt_err *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return gt_fail(err, "%s: cannot start the YAML parser", path);
    yaml_parser_set_input_file(&parser, f);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        rc = gt_fail(err, "%s: line %d: YAML syntax error: %s", path, (int)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "unknown");
    }
    yaml_parser_delete(&parser);
    return rc;
}

int gt_run_config_load_file(gt_run_config *rc, const char *path, gt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return gt_fail(err, "%s: cannot open the run config: %s", path, strerror(errno));
    /* A directory opens for reading on Linux and then fails in libyaml as a "syntax error". */
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        int saved = errno;
        fclose(f);
        if (S_ISDIR(st.st_mode)) return gt_fail(err, "%s: is a directory, not a YAML run config file", path);
        return gt_fail(err, "%s: cannot read the run config: %s", path, strerror(saved));
    }
    yaml_document_t doc;
    int r = load_doc(&doc, f, path, err);
    fclose(f);
    if (r) return -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_walk *w = gt_calloc(1, sizeof *w);
    w->path = path;
    w->doc = &doc;
    if (root && root->type == YAML_MAPPING_NODE) r = walk_mapping(rc, w, root, "", err);
    else if (root && !(root->type == YAML_SCALAR_NODE && !root->data.scalar.length)) {
        r = gt_fail(err, "%s: line %d: the run config must be a mapping of keys", path, line_of(root));
    }
    free(w);
    yaml_document_delete(&doc);
    return r;
}

/* ---- --set values ---- */

/* "[a, b]" as a flow sequence through libyaml, so quoting works as in the file. */
static int parse_flow_list(gt_run_config *rc, const rc_field *f, const char *value, const char *what,
                           gt_err *err) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return gt_fail(err, "%s: cannot start the YAML parser", what);
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    int ok = yaml_parser_load(&parser, &doc);
    yaml_parser_delete(&parser);
    if (!ok) return gt_fail(err, "%s: %s: '%s' is not a YAML list", what, f->key, value);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int r;
    if (!root || root->type != YAML_SEQUENCE_NODE) {
        r = gt_fail(err, "%s: %s: '%s' is not a YAML list", what, f->key, value);
    } else {
        yaml_walk w = {.path = what, .doc = &doc};
        r = set_from_node(rc, &w, f, root, err);
    }
    yaml_document_delete(&doc);
    return r;
}

int gt_run_config_set(gt_run_config *rc, const char *key, const char *value, const char *what,
                      gt_err *err) {
    const rc_field *f = gt_rc_find(key);
    if (!f) {
        char known[512];
        gt_rc_section_keys(key, known, sizeof known);
        const char *dot = strrchr(key, '.');
        int n = dot ? (int)(dot - key) : 0;
        if (gt_rc_is_section(key)) {
            return gt_fail(err, "%s: '%s' is a section; set one of its keys (%s.KEY)", what, key, key);
        }
        if (n && !known[0]) return gt_fail(err, "%s: unknown key '%s' (no section '%.*s')", what, key, n, key);
        return gt_fail(err, "%s: unknown key '%s' (%.*s%s has: %s)", what, key, n, key,
                       n ? "" : "the top level", known);
    }
    if (f->type == RC_LIST && value[0] == '[') return parse_flow_list(rc, f, value, what, err);
    rc_scalar s = {value, 1};
    rc_value v = {0, &s, 1};
    return gt_rc_assign(rc, f, &v, what, err);
}
