/* The schema of the run config (internal to train/config/run_config*.c): one row per key, and the generic
 * assignment of a parsed YAML value to a key. */
#ifndef GT_RUN_CONFIG_SCHEMA_H
#define GT_RUN_CONFIG_SCHEMA_H

#include "run_config.h"

typedef enum { RC_INT, RC_REAL, RC_BOOL, RC_STR, RC_ENUM, RC_LIST } rc_type;

typedef struct {
    const char *key;     /* dotted: "optim.lr"; the part before the dot is the section */
    rc_type type;
    size_t off;          /* offset of the field in gt_run_config */
    const char *def;     /* default, as YAML text ("null" for none); parsed like user input */
    double lo, hi;       /* allowed range of RC_INT / RC_REAL */
    int lo_open, hi_open;/* 1: the bound itself is excluded */
    int nullable;        /* RC_STR: null allowed */
    const char *choices; /* RC_ENUM: "cosine|linear|constant" */
    const char *help;    /* the comment written above the key */
} rc_field;

/* A value as parsed from YAML or --set: one scalar, or a list of scalars. plain marks unquoted
 * scalars (only those can be null). */
typedef struct {
    const char *text;
    int plain;
} rc_scalar;

typedef struct {
    int is_list;
    const rc_scalar *items; /* is_list: count items; else items[0] */
    int count;
} rc_value;

const rc_field *gt_rc_fields(int *count);
const rc_field *gt_rc_find(const char *key);
/* 1 when some key lies under "section." (e.g. "optim"). */
int gt_rc_is_section(const char *section);
/* Writes "lr, beta1, ..." (the keys of the section of key) into buf, for unknown-key messages. */
void gt_rc_section_keys(const char *key, char *buf, size_t len);
/* Parses and assigns v to f's field; where ("file: line 3" or "--set k=v") prefixes messages. */
int gt_rc_assign(gt_run_config *rc, const rc_field *f, const rc_value *v, const char *where,
                 gt_err *err);

#endif
