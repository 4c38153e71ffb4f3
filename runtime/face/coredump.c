/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * coredump.c: a core dump of a program under upvm holds its paged-out
 * pages (only in libupvm.so, as interpose.c).
 *
 * The kernel writes a core by looking each page up without the right to
 * wait for a userfaultfd handler (get_dump_page()): a page upvm paged out
 * would be zeros in the dump, and so would one the pageout daemon holds
 * in staging.  So for each signal whose default action dumps core, and
 * whose disposition is still the default when the preload starts, upvm
 * installs a handler.  When a dump will be written (the process is
 * dumpable and RLIMIT_CORE is not 0, or core_pattern pipes to a program),
 * it pages every written page back in (upvm_core_pagein: the pageout
 * daemon stopped, past the budget), restores the default action and lets
 * the signal end the process as it would have: a fault the hardware
 * raised (si_code > 0: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS) by
 * returning to the instruction, which faults again; a signal that was
 * sent (abort(), kill, sigqueue) by sending it to this thread again with
 * its own siginfo, so the dump and the parent see the same signal.
 *
 * Limits: a program that installs its own handler for such a signal
 * replaces upvm's (sigaction() is not interposed: the program sees upvm's
 * handler as the old action, so one that chains to it gets the page-in);
 * gcore and other dumps from outside the process read through
 * /proc/PID/mem and get EIO for paged-out pages (README, "The outside
 * world"); the page-in is skipped, with one line, where it could deadlock
 * (upvm_core_pagein).  With several threads dying at once, the first
 * pages in and the others wait for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "coredump.h"
#include "log.h"
#include "upvm_int.h"
#include "vm.h"

#define CD_STOP_MS	5000	/* for the pageout daemon's batch */
#define CD_WAIT_MS	600000	/* another thread's page-in, at most */

/* signals whose default action dumps core (signal(7)), but SIGTRAP: a
   breakpoint does not trap again when its handler returns */
static const int cd_signals[] = {
	SIGQUIT, SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS, SIGXCPU,
	SIGXFSZ,
};

enum { CD_IDLE, CD_RUNNING, CD_DONE };
static atomic_int cd_state;	/* the page-in: one thread does it */

/* cd_will_dump: the kernel will write a core for this process */
static bool
cd_will_dump(void)
{
	struct rlimit rl;
	char c = 0;
	int fd;

	if (prctl(PR_GET_DUMPABLE) == 0)
		return false;
	if (getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur != 0)
		return true;
	/* a pipe to a program takes the dump whatever the limit */
	if ((fd = open("/proc/sys/kernel/core_pattern", O_RDONLY |
	    O_CLOEXEC)) >= 0) {
		if (read(fd, &c, 1) != 1)
			c = 0;
		(void)close(fd);
	}
	return c == '|';
}

/* cd_refaults: returning from the handler raises the signal again */
static bool
cd_refaults(int sig, const siginfo_t *si)
{
	return si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS ||
	    sig == SIGILL || sig == SIGFPE || sig == SIGSYS);
}

/* cd_pagein: page in once, or wait for the thread that does */
static void
cd_pagein(int sig)
{
	struct timespec t0, t1;
	int idle = CD_IDLE;
	long n;

	if (!atomic_compare_exchange_strong(&cd_state, &idle, CD_RUNNING)) {
		for (int ms = 0; ms < CD_WAIT_MS &&
		    atomic_load(&cd_state) == CD_RUNNING; ms += 10)
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 },
			    NULL);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = upvm_core_pagein(CD_STOP_MS);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n >= 0)
		upvm_log(LOG_WARN, "SIG%s: %ld paged-out pages read back in "
		    "for the core dump (%.1f s)", sigabbrev_np(sig), n,
		    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec -
		    t0.tv_nsec) / 1e9);
	else if (n == -EDEADLK)
		upvm_log(LOG_WARN, "SIG%s arrived inside upvm: paged-out "
		    "pages are not read back in; the core dump holds zeros "
		    "for them", sigabbrev_np(sig));
	atomic_store(&cd_state, CD_DONE);
}

static void
cd_handler(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int saved = errno;

	(void)uc;
	sigemptyset(&dfl.sa_mask);
	(void)sigaction(sig, &dfl, NULL);
	if (cd_will_dump())
		cd_pagein(sig);
	/* blocked while the handler runs: delivered as it returns */
	if (!cd_refaults(sig, si))
		(void)syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig,
		    si);
	errno = saved;
}

void
coredump_install(void)
{
	struct sigaction sa = { .sa_sigaction = cd_handler,
	    .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART }, old;

	/* nothing else runs in between: the page-in is the last word */
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < nitems(cd_signals); i++) {
		if (sigaction(cd_signals[i], NULL, &old) != 0 ||
		    (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
			continue;	/* the program's own choice */
		(void)sigaction(cd_signals[i], &sa, NULL);
	}
}
