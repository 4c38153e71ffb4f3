/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvm_int.h: entry points of the runtime that are not part of the public
 * API: for the test suites (which link upvm_core) and upvm's own tools.
 */
#ifndef UPVM_INT_H
#define UPVM_INT_H

#include <stdbool.h>

/*
 * upvm_inject_swap_failure: the nth next swap read (write: write) fails
 * with EIO as if the disk had failed (swap_inject_failure()).
 * => -ENXIO without a running upvm with a budget.
 */
int upvm_inject_swap_failure(bool write, int nth);

/*
 * upvm_swap_reap: give back now the swap references of the processes
 * forked from this one (or from its ancestors) that are gone without
 * upvm_fini (swap_reap; the allocator does it before the swap file grows
 * and when it is full).
 * => the processes whose references came back; -ENXIO (no swap).
 */
int upvm_swap_reap(void);

/*
 * upvm_inject_swap_gate: hold the swap reads (write: writes) started from
 * now on in the kernel until released (swap_inject_gate): a disk that
 * does not answer, to catch I/O in flight.  Holding writes first waits
 * for the daemon's batch in flight (its writes are not held): once this
 * returns, every pageout write counted in writes_inflight is held.
 * => 0, -ENXIO (no swap).
 */
int upvm_inject_swap_gate(bool write, bool hold);

/*
 * upvm_core_pagein: a fatal signal is about to dump core: stop the
 * pageout daemon (waiting at most stop_ms for its batch) and bring every
 * page whose data is elsewhere back in, so that the dump holds it (the
 * kernel's dump looks pages up without waiting for a userfaultfd
 * handler: a paged-out page would be zeros there).  Safe in a signal
 * handler of a program thread: does nothing where it could deadlock (the
 * thread is inside upvm or is one of its threads, an assertion failed,
 * init, fini or fork holds upvm, the daemon does not stop in time).
 * => pages read back in (>= 0); -EDEADLK (skipped), -ENXIO (not running).
 */
long upvm_core_pagein(int stop_ms);

/*
 * upvm_set_fork_touch: touch() runs in fork's prepare handler after the
 * pageout daemon stopped and before the fault threads stop, to make
 * resident what fork's other handlers touch (upvm.c says why).
 */
void upvm_set_fork_touch(void (*touch)(void));

/*
 * upvm_inject_stage_hook: call hook(addr, npages) on the daemon's thread
 * for each run the move protocol is about to stage, after its dirty scan
 * and before its move: the tests' way to land a write in that window
 * every time, not once in a while.  NULL removes it.
 * => -ENXIO without a running upvm using the move protocol.
 */
int upvm_inject_stage_hook(void (*hook)(void *addr, int npages));

/*
 * upvm_inject_unstage_hook: call hook(addr, npages) for each clean run
 * moved back from the staging area (an inactive or readahead page a fault
 * took back, a page a fault waited for), after its move and before its
 * write-protect: a write there is one the uffd-wp bit does not show.
 * NULL removes it.  => -ENXIO as upvm_inject_stage_hook.
 */
int upvm_inject_unstage_hook(void (*hook)(void *addr, int npages));

/*
 * upvm_inject_pagein_hook: call hook(addr, npages) on the fault thread for
 * each swap or file read it has just mapped (write-protected, on the wp
 * protocol), before the pages settle: a write there waits in a WP fault
 * that only the pagein's end can wake.  NULL removes it.
 * => -ENXIO without a running upvm.
 */
int upvm_inject_pagein_hook(void (*hook)(void *addr, int npages));

/*
 * upvm_inject_file_failure: the nth next read (write: write) of the file
 * mapped at addr fails with EIO (vnode_inject_failure()).
 * => -EINVAL when addr is not in a file region; -ENXIO (no upvm_init).
 */
int upvm_inject_file_failure(void *addr, bool write, int nth);

#endif /* UPVM_INT_H */
