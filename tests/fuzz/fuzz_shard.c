/* Fuzz target: a token file through gt_tokens_read: the 64-byte shard header (magic, version, flags,
 * count, vocab_size, reserved bytes), the size checks, ids and attribute bytes, or the text form.
 * The first input byte picks the vocabulary the caller expects (0: none, else 1..255 tokens). */
#include "../../data/shard.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    char path[512];
    fuzz_write("tokens.bin", data + 1, size - 1, path, sizeof path);
    gt_tokens tk;
    gt_err err;
    if (gt_tokens_read(&tk, path, data[0] == 0xff ? 259u : data[0], &err) == 0) gt_tokens_free(&tk);
    return 0;
}
