/* The prompts of `gemmatron generate`: one --prompt TEXT, one --prompt-ids "ID ...", or a JSONL
 * file of many, each line one of
 *   {"prompt": TEXT} or {"text": TEXT}   plain text
 *   {"messages": [{"role", "content"}, ...]}  a chat, rendered with Gemma's turn format as
 *        scripts/prepare_data.py renders it, then "<start_of_turn>model\n" for the reply
 *   {"ids": [ID, ...]}                    token ids, taken as they are
 * Text prompts become [bos] + the concatenated encodings of their pieces. */
#ifndef GT_GENERATE_PROMPTS_H
#define GT_GENERATE_PROMPTS_H

#include "../tokenizer.h"

typedef struct {
    int count;
    gt_text *text;  /* [count]; n = 0 for an ids prompt */
    int32_t **ids;  /* [count], filled by gt_prompts_encode */
    int *n;         /* [count] */
} gt_prompts;

int gt_prompts_read(gt_prompts *p, const char *prompt, const char *prompt_ids, const char *file, gt_err *err);
/* Encodes the text prompts (t may be NULL when there are none) and checks every id < vocab. */
int gt_prompts_encode(gt_prompts *p, const gt_tokenizer *t, int bos, int vocab, gt_err *err);
void gt_prompts_free(gt_prompts *p);

#endif
