/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flusher.c: the periodic write-back of shared file regions (see
 * flusher.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "flusher.h"
#include "kmem.h"
#include "log.h"
#include "map.h"
#include "vmspace.h"
#include "writeback.h"

#define FLUSH_CHUNK	((vaddr_t)2 << 20)	/* address space per hold of
						   the map write lock */

/*
 * flusher_pass: write back every shared file entry, a chunk at a time.
 * => no locks held.  false if it stopped early (a failed write, or a stop
 *    requested).
 */
static bool
flusher_pass(struct flusher *fl)
{
	struct vmspace *vs = fl->fl_vs;
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	uint64_t t0, written;
	vaddr_t va = 0, hi;
	bool stop;
	int error;

	for (;;) {
		pthread_mutex_lock(&fl->fl_lock);
		stop = fl->fl_stop;
		pthread_mutex_unlock(&fl->fl_lock);
		if (stop)
			return false;
		vm_rwlock_wrlock(&map->m_lock);
		for (e = vm_map_first_ge(map, va); e != NULL &&
		    !wb_shared(e); e = vm_map_next(map, e))
			;
		if (e == NULL) {
			vm_rwlock_unlock(&map->m_lock);
			return true;
		}
		va = MAX(va, e->e_start);
		hi = MIN(e->e_end, va + FLUSH_CHUNK);
		t0 = stats_now_ns();
		written = atomic_load(&vs->vs_stats.st_file_writes);
		error = wb_range(vs, va, hi, false);
		vm_rwlock_unlock(&map->m_lock);
		if (error != 0)
			return false;
		va = hi;
		/* faults waited while the chunk was written: let them run as
		   long again before the next (a pass takes at most half) */
		if (atomic_load(&vs->vs_stats.st_file_writes) != written)
			(void)nanosleep(&(struct timespec){ .tv_nsec = (long)
			    MIN(stats_now_ns() - t0, 100000000ull) }, NULL);
	}
}

static void *
flusher_main(void *arg)
{
	struct flusher *fl = arg;
	struct timespec until;

	vm_tl_inside = 1;
	pthread_mutex_lock(&fl->fl_lock);
	while (!fl->fl_stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += fl->fl_interval_s;
		while (!fl->fl_stop && pthread_cond_timedwait(&fl->fl_wake,
		    &fl->fl_lock, &until) != ETIMEDOUT)
			;
		if (fl->fl_stop)
			break;
		pthread_mutex_unlock(&fl->fl_lock);
		if (flusher_pass(fl))
			STAT_INC(&fl->fl_vs->vs_stats, st_flushes);
		pthread_mutex_lock(&fl->fl_lock);
	}
	pthread_mutex_unlock(&fl->fl_lock);
	fl->fl_cpu_ns = stats_thread_cpu_ns(pthread_self());
	return NULL;
}

int
flusher_start(struct vmspace *vs)
{
	pthread_condattr_t ca;
	struct flusher *fl;
	sigset_t all, old;
	int error;

	vs->vs_flusher = NULL;
	if (vs->vs_flush_s == 0 || vs->vs_pd == NULL)
		return 0;
	if ((fl = kmem_alloc(sizeof(*fl))) == NULL)
		return -ENOMEM;
	memset(fl, 0, sizeof(*fl));
	fl->fl_vs = vs;
	fl->fl_interval_s = vs->vs_flush_s;
	pthread_mutex_init(&fl->fl_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl->fl_wake, &ca);
	pthread_condattr_destroy(&ca);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = -pthread_create(&fl->fl_thread, NULL, flusher_main, fl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		pthread_cond_destroy(&fl->fl_wake);
		pthread_mutex_destroy(&fl->fl_lock);
		kmem_free(fl, sizeof(*fl));
		upvm_log(LOG_ERR, "upvm: cannot start the flusher thread: %s; "
		    "shared file regions are written back only at msync, "
		    "unmap, eviction and exit", strerror(-error));
		return error;
	}
	pthread_setname_np(fl->fl_thread, "upvm-flush");
	vs->vs_flusher = fl;
	return 0;
}

void
flusher_stop(struct vmspace *vs)
{
	struct flusher *fl = vs->vs_flusher;

	if (fl == NULL)
		return;
	pthread_mutex_lock(&fl->fl_lock);
	fl->fl_stop = true;
	pthread_cond_broadcast(&fl->fl_wake);
	pthread_mutex_unlock(&fl->fl_lock);
	(void)pthread_join(fl->fl_thread, NULL);
	atomic_fetch_add(&vs->vs_pd_cpu_done, fl->fl_cpu_ns);
	pthread_cond_destroy(&fl->fl_wake);
	pthread_mutex_destroy(&fl->fl_lock);
	kmem_free(fl, sizeof(*fl));
	vs->vs_flusher = NULL;
}

uint64_t
flusher_cpu_ns(struct vmspace *vs)
{
	return vs->vs_flusher != NULL ?
	    stats_thread_cpu_ns(vs->vs_flusher->fl_thread) : 0;
}
