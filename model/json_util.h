/* Small helpers over jansson shared by the JSON readers (config.json, safetensors headers). */
#ifndef GT_JSON_UTIL_H
#define GT_JSON_UTIL_H

#include <jansson.h>

/* "an object", "a string", ... for messages that say what a value is instead of what it should be. */
const char *gt_json_kind(const json_t *j);

#endif
