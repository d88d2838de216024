/* Stop requests (signals.h). The flag below is the program's only mutable global: a signal
 * handler can reach nothing else. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "../core/base.h"

static volatile sig_atomic_t pending_signal = 0;

static void on_signal(int sig) {
    if (!pending_signal) pending_signal = sig;
}

void gt_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        GT_DIE("sigaction: %s", strerror(errno));
}

int gt_signals_pending(void) { return (int)pending_signal; }

void gt_signals_clear(void) { pending_signal = 0; }
