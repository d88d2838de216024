/* Stop requests (signals.h). The flag below is the program's only mutable global: a signal
 * handler can reach nothing else. */
#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../core/base.h"

static volatile sig_atomic_t pending_signal = 0;

/* Only async-signal-safe calls here (write, sigaction, raise). */
static void on_signal(int sig) {
    if (sig == SIGINT && pending_signal) {
        static const char msg[] = "gemmatron: second interrupt: exiting without a checkpoint\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGINT, &dfl, NULL);
        raise(SIGINT); /* delivered on return: the shell sees "killed by SIGINT", as for any Ctrl-C */
        return;
    }
    if (sig == SIGINT) {
        static const char msg[] = "gemmatron: interrupt: finishing the step and writing a checkpoint (Ctrl-C again "
                                  "to exit at once)\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
    }
    if (!pending_signal) pending_signal = sig;
}

static void install(int sig, const struct sigaction *sa, int keep_ignored) {
    struct sigaction old;
    if (keep_ignored) {
        if (sigaction(sig, NULL, &old) != 0) GT_DIE("sigaction(%d): %s", sig, strerror(errno));
        if (old.sa_handler == SIG_IGN) return;
    }
    if (sigaction(sig, sa, NULL) != 0) GT_DIE("sigaction(%d): %s", sig, strerror(errno));
}

void gt_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    install(SIGTERM, &sa, 0);
    install(SIGUSR1, &sa, 0);
    install(SIGINT, &sa, 1);
    install(SIGHUP, &sa, 1);
}

int gt_signals_pending(void) { return (int)pending_signal; }

void gt_signals_clear(void) { pending_signal = 0; }
