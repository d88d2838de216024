/* Internals of the checkpoint writer and reader (train/ckpt/checkpoint.h), shared by the files
 * of train/ckpt/; also the catalog that `gemmatron export` writes checkpoint-format files through. */
#ifndef GT_CKPT_INTERNAL_H
#define GT_CKPT_INTERNAL_H

#include "../../core/fs.h"
#include "../../model/fp8.h"
#include "checkpoint.h"

/* ---- agreement across the grid (train/ckpt/checkpoint.c) ---- */


/* ---- the catalog: every file and tensor of a checkpoint, computed from the config alone, so
 * that it is the same on every rank (train/ckpt/ckpt_catalog.c) ---- */

/* What an entry holds for its HF tensor. */
enum { CK_WEIGHT = 0, CK_MASTER, CK_EXP_AVG, CK_EXP_AVG_SQ, CK_KINDS };

#define CK_NAME_LEN 128

/* fp8_state.safetensors (train/ckpt/ckpt_fp8.c): amax_history [len, count], scale, scale_inv, fp8_max
 * [count] (F32), recipe.amax_compute_algo [1] (I32: 0 max, 1 most_recent), recipe.margin [1] (F32). */
enum { CK_FP8_HISTORY = 0, CK_FP8_SCALE, CK_FP8_SCALE_INV, CK_FP8_MAX, CK_FP8_ALGO, CK_FP8_MARGIN, CK_FP8_TENSORS };

typedef struct {
    char name[CK_NAME_LEN]; /* HF name, plus ".master" / ".exp_avg" / ".exp_avg_sq" */
    gt_dtype dtype;
    int file;               /* index into ck_catalog.files */
    uint64_t offset;        /* absolute byte offset of the data in its file */
} ck_entry;

typedef struct {
    char name[64];          /* file name inside the checkpoint directory */
    void *header;           /* 8-byte length + padded JSON header (gt_st_header) */
    size_t hbytes;
    uint64_t size;          /* whole file */
} ck_file;

typedef struct {
    int ntensors;           /* HF tensors: embedding, 9 per layer, final norm */
    char (*tname)[96];      /* [ntensors] */
    int64_t *rows, *cols;   /* [ntensors]: 2-D view (1-D tensors are [1, n]) */
    int *ndim;              /* [ntensors] */
    ck_entry *e;            /* [CK_KINDS * ntensors]: entry of kind k of tensor i at k*ntensors+i */
    int has_state;          /* optimizer entries present */
    ck_file *files;
    int nfiles;
    int model_files;        /* files[0, model_files) hold the weights; then optimizer.safetensors */
    int fp8_file;           /* index of fp8_state.safetensors in files, -1: none (ck_catalog_add_fp8) */
    gt_ckpt_fp8 fp8;        /* what that file holds */
    uint64_t fp8_off[CK_FP8_TENSORS]; /* absolute offsets of its tensors, in ck_fp8_tensor order */
} ck_catalog;

/* Weights in wdtype, split into files of at most shard_bytes (a single tensor larger than that
 * gets a file of its own); optimizer state in sdtype when sdtype >= 0 (else no optimizer file). */
int ck_catalog_build(ck_catalog *c, const gt_config *cfg, gt_dtype wdtype, int sdtype,
                     uint64_t shard_bytes, gt_err *err);
void ck_catalog_free(ck_catalog *c);
/* Index of HF tensor name in the catalog's order, or -1 when it is not a Gemma tensor. */
int ck_tensor_index(const gt_config *cfg, const char *name);
const ck_entry *ck_entry_of(const ck_catalog *c, int kind, int tensor);
/* model.safetensors.index.json of a sharded catalog (malloc'ed), NULL for a single file. */
char *ck_index_json(const ck_catalog *c);
/* The file name for the weights: "model.safetensors" or "model-00001-of-00003.safetensors". */
void ck_shard_name(char *buf, size_t len, int i, int n);
extern const char *const ck_suffix[CK_KINDS];

/* ---- the run directory's checkpoints (train/ckpt/ckpt_dirs.c) ---- */

/* Replaces RUN_DIR/latest by name, atomically (latest.tmp, fsync, rename, fsync RUN_DIR). */
int ck_write_latest(const char *run_dir, const char *name, gt_err *err);
/* Removes leftovers of interrupted saves: RUN_DIR/checkpoint-*.tmp and checkpoint-*.old. */
void ck_remove_stale(const char *run_dir);

/* ---- the HF side of a directory (train/ckpt/ckpt_hf.c) ---- */

/* config.json (cfg with dtype = wdtype), generation_config.json, and the index of a sharded
 * catalog, into dir; each fsync'ed. */
int ck_write_hf_files(const gt_config *cfg, gt_dtype wdtype, const ck_catalog *c, const char *dir,
                      gt_err *err);
/* Creates every file of the catalog in dir with its header and final size (the data is written
 * afterwards, by whichever process holds it); fsync'ed. */
int ck_create_files(const ck_catalog *c, const char *dir, gt_err *err);
/* Opens them for writing (fds[nfiles]); closes what it opened on failure. */
int ck_open_files(const ck_catalog *c, const char *dir, int *fds, gt_err *err);
/* fsyncs and closes fds[nfiles] (every one, even after a failure). */
int ck_close_files(const ck_catalog *c, const char *dir, int *fds, gt_err *err);


/* ---- fp8_state.safetensors (train/ckpt/ckpt_fp8.c) ---- */

/* Adds fp8_state.safetensors for the model's FP8 state f (every rank: the catalog stays the same
 * everywhere) as the last file of the catalog. */
int ck_catalog_add_fp8(ck_catalog *c, const gt_fp8 *f, gt_err *err);
/* Rank 0: the model's FP8 state into the catalog's fp8 file, open as fds[c->fp8_file] in dir. */
int ck_write_fp8(gt_model *m, const ck_catalog *c, const int *fds, const char *dir, gt_err *err);
/* dir's fp8_state.safetensors has the tensors, dtypes and shapes that info describes. */
int ck_check_fp8(const char *dir, const gt_ckpt_fp8 *info, gt_err *err);
/* Restores dir's FP8 state (described by info) into the model's; refuses another history length
 * or tensor count, naming both. */
int ck_read_fp8(gt_model *m, const char *dir, const gt_ckpt_fp8 *info, gt_err *err);
/* The model's FP8 state as dir's fp8_state.safetensors, written whole by the caller (rank 0) with
 * calibration.steps = calibrated (gt_st_write: fsync'ed; removed on failure). */
int ck_fp8_save_file(gt_model *m, const char *dir, long long calibrated, gt_err *err);
/* What dir's fp8_state.safetensors holds, from the file alone (a checkpoint's or a calibrated
 * directory's); *calibrated = its calibration.steps, -1 when it has none (a checkpoint's). */
int ck_fp8_describe(const char *dir, gt_ckpt_fp8 *info, long long *calibrated, gt_err *err);

/* ---- trainer_state.json (train/ckpt/ckpt_state.c) ---- */


/* The JSON text (malloc'ed) of st, with the weights' dtype and the sizes of the catalog's files. */
char *ck_state_json(const gt_ckpt_state *st, const ck_catalog *c, gt_dtype wdtype);

/* ---- checksums.json (train/ckpt/ckpt_sums.c) ---- */

/* CRC32C of each of dir's files[n] (of files[i].bytes bytes) into crcs[n] on every rank: each rank
 * of g's world reads an equal slice of every file and the slices' CRCs are combined; g NULL: alone. */
int ck_sums_compute(gt_grid *g, const char *dir, const ck_file_size *files, int n, uint32_t *crcs, gt_err *err);
/* Writes dir/checksums.json: files[n] with their crcs, st's step and optimizer counters; fsync'ed. */
int ck_sums_write(const char *dir, const gt_ckpt_state *st, const ck_file_size *files, const uint32_t *crcs, int n,
                  gt_err *err);

/* ---- this rank's slices (train/ckpt/ckpt_write.c, train/ckpt/ckpt_read.c) ---- */

/* Writes the slices this rank owns into the catalog's files, open as fds[nfiles] in dir: the
 * weights when `weights` is set, and the optimizer state's part in o's range [lo, hi) when the
 * catalog has optimizer state. */
int ck_write_slices(gt_model *m, gt_optimizer *o, int tp_size, int weights, const ck_catalog *c,
                    const char *dir, const int *fds, gt_err *err);
/* Reads this rank's slices of the master weights (into the parameters and the master copy) and
 * of the moments from dir/optimizer.safetensors; with a sharded optimizer, only their part in o's
 * range [lo, hi) (the caller then gathers the parameters over dp). */
int ck_read_slices(gt_model *m, gt_optimizer *o, const char *dir, gt_err *err);

/* The dtype of the optimizer state of this model's backend (F32, or F64 on cpu64). */
gt_dtype ck_state_dtype(const gt_model *m);

#endif
