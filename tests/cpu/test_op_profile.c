/* The op profile (train/metrics/op_profile.h) against its rule: every entry of the wrapped table
 * that takes a backend is either wrapped or left out (NULL), never copied through, since an inner
 * op called with the profile as its backend reads the profile's memory as the backend's state. An
 * inner table with every entry present (each a distinct address, never called) is wrapped, and no
 * entry of the profile's table may equal the inner's; so an op added to kernels/ops.h fails here
 * until op_profile.c wraps it. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../train/metrics/op_profile.h"
#include "check.h"

typedef void (*entry)(void);

/* gt_ops after its data fields (name, size, on_host) is function pointers only, from create on. */
#define FIRST offsetof(gt_ops, create)
_Static_assert((sizeof(gt_ops) - FIRST) % sizeof(entry) == 0, "gt_ops ends in whole function pointers");

static entry slot(const gt_ops *o, size_t i) {
    entry e;
    memcpy(&e, (const char *)o + FIRST + i * sizeof e, sizeof e);
    return e;
}

int main(void) {
    gt_check c = {0};
    gt_ops inner;
    memset(&inner, 0, sizeof inner);
    inner.name = "every op";
    size_t n = (sizeof inner - FIRST) / sizeof(entry);
    for (size_t i = 0; i < n; i++) {
        uintptr_t fake = 0x100000u + 64u * i;
        memcpy((char *)&inner + FIRST + i * sizeof(entry), &fake, sizeof fake);
    }
    gt_op_profile p;
    gt_op_profile_init(&p, &inner, NULL);
    int copied = 0, wrapped = 0;
    for (size_t i = 0; i < n; i++) {
        if (slot(&p.ops, i) == slot(&inner, i)) {
            printf("entry %zu (byte %zu of gt_ops) is the inner op, not a wrapper\n", i, FIRST + i * sizeof(entry));
            copied++;
        }
        wrapped += slot(&p.ops, i) != NULL;
    }
    gt_check_true(&c, copied == 0, "every op of a full inner table wrapped or left out (%d copied through)", copied);
    /* and the profile keeps the ops a model step needs: all but lifecycle, memory planning, graphs */
    gt_check_true(&c, wrapped >= (int)n - 8, "%d of %zu entries wrapped", wrapped, n);
    return gt_check_done(&c, "op_profile");
}
