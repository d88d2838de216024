/* Token shards: the on-disk format of training and evaluation data.
 *
 * Layout (little-endian):
 *   offset 0   char[8]  magic "GTTOKENS"
 *          8   u32      version (1)
 *         12   u32      flags: bit 0 = an attribute byte per token follows the tokens
 *         16   u64      count of tokens
 *         24   u32      vocab_size the ids were made for (0 = unknown)
 *         28   u8[36]   reserved, zero
 *         64   u32[count]  token ids
 *              u8[count]   attributes, if flags bit 0: bit 0 = the token is a training target
 *                          (counts in the loss), bit 1 = the token begins a document
 * Without attributes every token is a target and the file is one document. */
#ifndef GT_SHARD_H
#define GT_SHARD_H

#include "../core/base.h"

#define GT_SHARD_MAGIC "GTTOKENS"
#define GT_SHARD_VERSION 1u
#define GT_SHARD_HEADER_BYTES 64
#define GT_TOK_TARGET 1u
#define GT_TOK_DOC_START 2u

typedef struct {
    uint32_t *tokens;
    uint8_t *attr; /* NULL when the file has no attributes */
    int64_t count;
    uint32_t vocab_size;
} gt_tokens;

/* Writes a shard; attr may be NULL (every token a target, one document). The file is written to
 * "path.tmp", fsynced and renamed over path, so path is either the old file or the complete new one;
 * the tmp file is removed on failure. Refuses count <= 0, an id >= vocab_size (when vocab_size > 0)
 * and attribute bytes with unknown bits, so a shard the reader would reject is never written. */
int gt_shard_write(const char *path, const uint32_t *tokens, const uint8_t *attr, int64_t count,
                   uint32_t vocab_size, gt_err *err);
/* Reads a whole shard into out (free with gt_tokens_free). Rejects, with a message naming path: a
 * file shorter than the header, wrong magic, an unknown version, unknown flag bits, non-zero
 * reserved bytes, count 0, a count the file size does not match ("truncated" / "trailing bytes"),
 * attribute bytes with unknown bits, a header vocab_size different from a non-zero vocab_size (the
 * data was made with another tokenizer), and an id >= vocab_size (or >= the header's vocab_size
 * when vocab_size is 0; no id check when both are 0). out->vocab_size is the limit that was
 * applied. On failure out is left empty. */
int gt_shard_read(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err);
/* Reads a plain text file of whitespace-separated (space, tab, newline, CR) decimal token ids, each
 * at most UINT32_MAX and, when vocab_size > 0, below it. A word that is not all digits (letters, a
 * sign), an id that is too large, or a file with no ids gets a message naming the file, the line and
 * the word. attr is NULL. */
int gt_tokens_read_text(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err);
/* Either of the two: a file that starts with the magic, or has a NUL byte in its first 64 bytes
 * (no text file does), is read as a shard; anything else as text. */
int gt_tokens_read(gt_tokens *out, const char *path, uint32_t vocab_size, gt_err *err);
/* Frees and zeroes t; safe on a zeroed or already freed gt_tokens. */
void gt_tokens_free(gt_tokens *t);

#endif
