#define _POSIX_C_SOURCE 200809L
#include "generate_prompts.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_piece(gt_text *t, const char *s) {
    char **p = realloc(t->piece, (size_t)(t->n + 1) * sizeof *p);
    GT_ASSERT(p, "out of memory");
    t->piece = p;
    t->piece[t->n++] = strdup(s);
}

static int grow(gt_prompts *p) {
    int i = p->count++;
    p->text = realloc(p->text, (size_t)p->count * sizeof *p->text);
    p->ids = realloc(p->ids, (size_t)p->count * sizeof *p->ids);
    p->n = realloc(p->n, (size_t)p->count * sizeof *p->n);
    GT_ASSERT(p->text && p->ids && p->n, "out of memory");
    memset(&p->text[i], 0, sizeof p->text[i]);
    p->ids[i] = NULL;
    p->n[i] = 0;
    return i;
}

/* "<start_of_turn>ROLE\n" CONTENT "<end_of_turn>" "\n" per turn; system text goes before the next
 * user turn's content, separated by a blank line (scripts/prepare_data.py's render_chat). */
static int render_chat(gt_text *t, json_t *msgs, const char *where, gt_err *err) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return gt_fail(err, "%s: 'messages' must be a non-empty list", where);
    char *system = NULL;
    size_t k;
    json_t *m;
    json_array_foreach(msgs, k, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *content = json_string_value(json_object_get(m, "content"));
        if (!role || !content) {
            free(system);
            return gt_fail(err, "%s: message %zu needs a 'role' and a string 'content'", where, k + 1);
        }
        if (!strcmp(role, "assistant")) role = "model";
        if (strcmp(role, "user") && strcmp(role, "model") && strcmp(role, "system")) {
            free(system);
            return gt_fail(err, "%s: message %zu: unknown role '%s' (user, model, assistant or system)", where, k + 1,
                           role);
        }
        if (!strcmp(role, "system")) {
            size_t len = (system ? strlen(system) + 2 : 0) + strlen(content) + 1;
            char *s = gt_malloc(len);
            snprintf(s, len, "%s%s%s", system ? system : "", system ? "\n\n" : "", content);
            free(system);
            system = s;
            continue;
        }
        char head[64];
        snprintf(head, sizeof head, "<start_of_turn>%s\n", role);
        add_piece(t, head);
        if (!strcmp(role, "user") && system) {
            size_t len = strlen(system) + 2 + strlen(content) + 1;
            char *s = gt_malloc(len);
            snprintf(s, len, "%s\n\n%s", system, content);
            add_piece(t, s);
            free(s);
            free(system);
            system = NULL;
        } else {
            add_piece(t, content);
        }
        add_piece(t, "<end_of_turn>");
        add_piece(t, "\n");
    }
    if (system) {
        free(system);
        return gt_fail(err, "%s: a system message must come before a user turn", where);
    }
    add_piece(t, "<start_of_turn>model\n");
    return 0;
}

static int parse_ids(gt_prompts *p, int i, json_t *arr, const char *where, gt_err *err) {
    if (!json_is_array(arr)) return gt_fail(err, "%s: 'ids' must be a list of token ids", where);
    size_t len = json_array_size(arr);
    p->ids[i] = gt_malloc((len + 1) * sizeof(int32_t));
    for (size_t k = 0; k < len; k++) {
        json_t *v = json_array_get(arr, k);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
            return gt_fail(err, "%s: ids[%zu] is not a token id", where, k);
        p->ids[i][k] = (int32_t)json_integer_value(v);
    }
    p->n[i] = (int)len;
    return 0;
}

static int read_record(gt_prompts *p, json_t *rec, const char *where, gt_err *err) {
    if (!json_is_object(rec)) return gt_fail(err, "%s: expected a JSON object", where);
    int i = grow(p);
    json_t *v;
    if ((v = json_object_get(rec, "ids"))) return parse_ids(p, i, v, where, err);
    if ((v = json_object_get(rec, "messages"))) return render_chat(&p->text[i], v, where, err);
    const char *s = json_string_value(json_object_get(rec, "prompt"));
    if (!s) s = json_string_value(json_object_get(rec, "text"));
    if (!s) return gt_fail(err, "%s: expected a string 'prompt' or 'text', 'messages', or 'ids'", where);
    add_piece(&p->text[i], s);
    return 0;
}

static int read_file(gt_prompts *p, const char *path, gt_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return gt_fail(err, "generate: --prompts %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue;
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        json_error_t je;
        json_t *rec = json_loads(line, 0, &je);
        if (!rec) rc = gt_fail(err, "%s: not JSON: %s", where, je.text);
        else rc = read_record(p, rec, where, err);
        json_decref(rec);
    }
    free(line);
    fclose(f);
    if (!rc && p->count == 0) rc = gt_fail(err, "generate: --prompts %s: no prompt in it", path);
    return rc;
}

int gt_prompts_read(gt_prompts *p, const char *prompt, const char *prompt_ids, const char *file, gt_err *err) {
    memset(p, 0, sizeof *p);
    if (!!prompt + !!prompt_ids + !!file != 1)
        return gt_fail(err, "generate: give exactly one of --prompt, --prompt-ids and --prompts");
    if (file) return read_file(p, file, err);
    int i = grow(p);
    if (prompt) {
        add_piece(&p->text[i], prompt);
        return 0;
    }
    p->ids[i] = gt_malloc((strlen(prompt_ids) / 2 + 2) * sizeof(int32_t));
    const char *s = prompt_ids;
    char *end;
    while (1) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < INT32_MIN || v > INT32_MAX)
            return gt_fail(err, "generate: --prompt-ids: '%s' is not a list of token ids", prompt_ids);
        p->ids[i][p->n[i]++] = (int32_t)v;
        s = end;
    }
    return 0;
}

int gt_prompts_encode(gt_prompts *p, const gt_tokenizer *t, int bos, int vocab, gt_err *err) {
    int texts = 0;
    for (int i = 0; i < p->count; i++) texts += p->text[i].n > 0;
    if (texts && !t) return gt_fail(err, "generate: text prompts need a tokenizer (--tokenizer)");
    if (texts) {
        gt_text *tx = gt_calloc((size_t)texts, sizeof *tx);
        int k = 0;
        for (int i = 0; i < p->count; i++)
            if (p->text[i].n) tx[k++] = p->text[i];
        int32_t **ids;
        int *n;
        int rc = gt_tokenizer_encode(t, tx, texts, &ids, &n, err);
        k = 0;
        for (int i = 0; i < p->count; i++) {
            if (!p->text[i].n) continue;
            if (!rc && n[k] > 0) {
                /* [bos] + the text's ids, as every document of scripts/prepare_data.py */
                p->ids[i] = gt_malloc(((size_t)n[k] + 1) * sizeof(int32_t));
                p->ids[i][0] = bos;
                memcpy(p->ids[i] + 1, ids[k], (size_t)n[k] * sizeof(int32_t));
                p->n[i] = n[k] + 1;
            }
            free(ids[k]);
            k++;
        }
        free(ids);
        free(n);
        free(tx);
        if (rc) return -1;
    }
    for (int i = 0; i < p->count; i++) {
        if (p->n[i] == 0) return gt_fail(err, "generate: prompt %d is empty", i + 1);
        for (int k = 0; k < p->n[i]; k++)
            if (p->ids[i][k] < 0 || p->ids[i][k] >= vocab)
                return gt_fail(err, "generate: prompt %d: token id %d at %d is outside the vocabulary (0..%d)", i + 1,
                               p->ids[i][k], k, vocab - 1);
    }
    return 0;
}

void gt_prompts_free(gt_prompts *p) {
    for (int i = 0; i < p->count; i++) {
        for (int k = 0; k < p->text[i].n; k++) free(p->text[i].piece[k]);
        free(p->text[i].piece);
        free(p->ids[i]);
    }
    free(p->text);
    free(p->ids);
    free(p->n);
    memset(p, 0, sizeof *p);
}
