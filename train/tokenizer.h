/* Text <-> token ids for `gemmatron generate`. Two vocabularies:
 *   byte  the demo's (scripts/prepare_data.py --byte): id = UTF-8 byte + 3; 0 pad, 1 eos, 2 bos;
 *         done here, no Python needed;
 *   HF    a tokenizer.json, through the Python `tokenizers` package (the one data preparation
 *         uses): scripts/tokenizer_io.py is run once to encode every prompt and once to decode
 *         every completion (files in a temporary directory). gemmatron carries no BPE of its own.
 * The interpreter is $GEMMATRON_PYTHON (default python3); the script is found beside the source
 * tree the binary was built from, or at $GEMMATRON_TOKENIZER_IO. */
#ifndef GT_TOKENIZER_H
#define GT_TOKENIZER_H

#include <stdint.h>

#include "../core/base.h"

typedef struct {
    int byte;          /* 1: the byte vocabulary */
    const char *path;  /* tokenizer.json (HF) */
    int vocab;         /* ids the tokenizer can produce */
} gt_tokenizer;

/* A prompt's text, as pieces encoded one by one and concatenated (chat turns are pieces, as
 * scripts/prepare_data.py encodes them). */
typedef struct {
    int n;
    char **piece;
} gt_text;

/* path: "byte", a tokenizer.json, or NULL. Fails with the reason when it cannot be used, and when
 * its vocabulary is larger than the model's (model_vocab). */
int gt_tokenizer_open(gt_tokenizer *t, const char *path, int model_vocab, gt_err *err);
/* ids[i] (caller frees each, and the array) = the concatenated encoding of texts[i]; n[i] its length. */
int gt_tokenizer_encode(const gt_tokenizer *t, const gt_text *texts, int count, int32_t ***ids, int **n,
                        gt_err *err);
/* text[i] (caller frees) = the decoding of ids[i][0..n[i]). */
int gt_tokenizer_decode(const gt_tokenizer *t, int32_t *const *ids, const int *n, int count, char ***text,
                        gt_err *err);

#endif
