/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvm.c: the public API over the in-process vmspace.
 *
 * The one vmspace lives in static storage.  upvm_lock serializes init and
 * fini against each other and against the API calls' check that upvm is
 * initialized (a read hold for the duration of each call).  Map changes
 * take the map's own lock inside.
 *
 * Every entry point validates its arguments before changing anything and
 * logs one line saying what was wrong and what to do.  Output pointers are
 * written only after every lock is dropped: they may point into managed
 * memory, and writing them can fault.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "amap.h"
#include "config.h"
#include "flusher.h"
#include "kmem.h"
#include "log.h"
#include "pager.h"
#include "pdaemon.h"
#include "place.h"
#include "region.h"
#include "swap.h"
#include "sys.h"
#include "upvm.h"
#include "upvm_int.h"
#include "vmspace.h"
#include "vnode.h"
#include "writeback.h"

static struct vmspace upvm_vs;
static pthread_rwlock_t upvm_lock = PTHREAD_RWLOCK_INITIALIZER;
static bool upvm_running;		/* [upvm_lock] */
static struct upvm_config upvm_cfg;	/* [upvm_lock] */
/*
 * This thread holds upvm_lock for writing (init, fini, a fork's prepare).
 * What it calls meanwhile must not take the lock for reading: glibc
 * answers EDEADLK without taking it, and the matching unlock would
 * release the write hold (jemalloc's prefork, run from ours, maps a new
 * arena when the forking thread never allocated).  Its memory calls go
 * to the kernel as if upvm were not running.
 */
static _Thread_local bool upvm_tl_writer;

static void
upvm_lock_write(void)
{
	pthread_rwlock_wrlock(&upvm_lock);
	upvm_tl_writer = true;
}

static void
upvm_unlock_write(void)
{
	upvm_tl_writer = false;
	pthread_rwlock_unlock(&upvm_lock);
}

/*
 * api_enter: hold upvm_lock for reading for one API call.
 * => -ENXIO (logged) if upvm is not initialized.
 */
static int
api_enter(const char *fn)
{
	if (upvm_tl_writer) {
		upvm_log(LOG_ERR, "%s: called while upvm starts, stops or "
		    "forks (from a fork handler?); call it after fork() "
		    "returns", fn);
		return -EDEADLK;
	}
	pthread_rwlock_rdlock(&upvm_lock);
	if (upvm_running) {
		vm_tl_inside++;
		return 0;
	}
	pthread_rwlock_unlock(&upvm_lock);
	upvm_log(LOG_ERR, "%s: upvm is not initialized; call upvm_init() "
	    "first", fn);
	return -ENXIO;
}

static void
api_exit(void)
{
	vm_tl_inside--;
	pthread_rwlock_unlock(&upvm_lock);
}

struct vmspace *
vmspace_enter(void)
{
	/* upvm's own memory calls (its threads, or nested in a call that
	   holds upvm's locks: jemalloc mapping an arena for a log line's
	   strerror) are never managed: they go to the kernel */
	if (upvm_tl_writer || vm_tl_inside > 0)
		return NULL;
	pthread_rwlock_rdlock(&upvm_lock);
	if (upvm_running) {
		vm_tl_inside++;
		return &upvm_vs;
	}
	pthread_rwlock_unlock(&upvm_lock);
	return NULL;
}

void
vmspace_exit(void)
{
	vm_tl_inside--;
	pthread_rwlock_unlock(&upvm_lock);
}

/*
 * Fork (vmspace.c has the why).  prepare: hold upvm_lock (no API call in
 * progress, none starts) and stop the runtime's threads; parent: start
 * them again; child: the runtime of its own.
 */
/*
 * upvm_fork_touch: set by the preload (interpose.c): pages the other fork
 * handlers will touch, touched while faults are still served.  Those of
 * jemalloc run after ours in the parent (its prepare, with our threads
 * stopped) and before ours in the child (whose regions have no
 * userfaultfd registration yet: a page not present reads as zeros), and
 * its metadata lives in managed memory.
 */
static void (*upvm_fork_touch)(void);

void
upvm_set_fork_touch(void (*touch)(void))
{
	upvm_fork_touch = touch;
}

/* glibc's fork, which runs the fork handlers: the name fork is the
   preload's (interpose.c) */
extern pid_t __fork(void);

/* a fork through upvm_fork on this thread, and what its parent handler
   left for it to finish (vmspace_fork_done) */
static _Thread_local bool upvm_tl_forking;
static _Thread_local uint64_t upvm_tl_fork_token;
static _Thread_local uint64_t upvm_tl_fork_gen;
/* upvm_init calls that started upvm: a token is for the run it came from */
static uint64_t upvm_generation;	/* upvm_lock */

static void
upvm_atfork_prepare(void)
{
	upvm_lock_write();
	if (upvm_running) {
		vmspace_stop(&upvm_vs, upvm_fork_touch);
		vmspace_fork_prepare(&upvm_vs, upvm_tl_forking);
	}
}

static void
upvm_atfork_parent(void)
{
	if (upvm_running) {
		upvm_tl_fork_token = vmspace_fork_parent(&upvm_vs);
		upvm_tl_fork_gen = upvm_generation;
	}
	upvm_unlock_write();
}

static void
upvm_atfork_child(void)
{
	if (upvm_running)
		vmspace_fork_child(&upvm_vs, region_uninherit);
	/*
	 * The lock is write-held, but the writer glibc recorded is the
	 * parent's thread id, which this thread no longer has: unlocking
	 * would corrupt it.  Nobody else exists here to hold it: start anew.
	 */
	(void)pthread_rwlock_init(&upvm_lock, NULL);
	upvm_tl_writer = false;
}

pid_t
upvm_fork(void)
{
	pid_t pid;
	int saved;

	upvm_tl_forking = true;
	upvm_tl_fork_token = 0;
	pid = __fork();
	upvm_tl_forking = false;
	if (pid == 0 || upvm_tl_fork_token == 0)
		return pid;
	saved = errno;
	/* a upvm_fini meanwhile took the swap, and what was pending in it */
	pthread_rwlock_rdlock(&upvm_lock);
	if (upvm_running && upvm_generation == upvm_tl_fork_gen)
		vmspace_fork_done(&upvm_vs, upvm_tl_fork_token,
		    pid < 0 ? -saved : pid);
	pthread_rwlock_unlock(&upvm_lock);
	upvm_tl_fork_token = 0;
	errno = saved;
	return pid;
}

static void
upvm_fork_handlers_once(void)
{
	(void)pthread_atfork(upvm_atfork_prepare, upvm_atfork_parent,
	    upvm_atfork_child);
}

static void
upvm_fork_handlers(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, upvm_fork_handlers_once);
}

/* fd_count: descriptors open in this process now, or -1 */
static int
fd_count(void)
{
	char buf[4096];
	long n;
	int fd, count = 0;

	if ((fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < n;
		    off += ((struct dirent64 *)(buf + off))->d_reclen)
			count += ((struct dirent64 *)(buf + off))->d_name[0] !=
			    '.';
	close(fd);
	return n < 0 ? -1 : count - 1;	/* not the directory's own */
}

/*
 * nofile_make_room: upvm holds `held` descriptors that count against the
 * program's RLIMIT_NOFILE.  A low soft limit is raised by as many (up to
 * the hard limit), so that the program keeps the descriptors it had;
 * where the hard limit does not allow it, one line says so.
 */
static void
nofile_make_room(int held)
{
	struct rlimit rl;
	rlim_t cur, want;

	if (held <= 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 1024)
		return;
	cur = rl.rlim_cur;
	want = cur + (rlim_t)held;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	rl.rlim_cur = want;
	if (want > cur && setrlimit(RLIMIT_NOFILE, &rl) != 0)
		want = cur;
	if (want < cur + (rlim_t)held)
		upvm_log(LOG_WARN, "upvm holds %d file descriptors and "
		    "RLIMIT_NOFILE (hard limit %llu) has no room for them: the "
		    "program has %d fewer than its limit; raise it "
		    "(ulimit -Hn)", held, (unsigned long long)rl.rlim_max,
		    (int)(cur + (rlim_t)held - want));
}

UPVM_API int
upvm_init(const struct upvm_config *cfgp)
{
	struct upvm_config cfg;
	int error, nfd;

	if (cfgp == NULL) {
		if ((error = upvm_config_from_env(&cfg)) != 0)
			return error;
	} else {
		cfg = *cfgp;
		if ((error = config_check(&cfg)) != 0)
			return error;
	}
	upvm_lock_write();
	if (upvm_running) {
		upvm_unlock_write();
		upvm_log(LOG_ERR, "upvm_init: upvm is already initialized; "
		    "call upvm_fini() before initializing again");
		return -EBUSY;
	}
	upvm_log_set_level(cfg.log_level);
	nfd = fd_count();
	if ((error = vmspace_init(&upvm_vs, &cfg)) == 0) {
		if (nfd >= 0)
			nofile_make_room(fd_count() - nfd);
		upvm_fork_handlers();
		upvm_cfg = cfg;
		upvm_running = true;
		upvm_generation++;
	}
	upvm_unlock_write();
	return error;
}

UPVM_API int
upvm_fini(void)
{
	upvm_lock_write();
	if (!upvm_running) {
		upvm_unlock_write();
		upvm_log(LOG_ERR, "upvm_fini: upvm is not initialized");
		return -ENXIO;
	}
	vmspace_fini(&upvm_vs);
	upvm_running = false;
	upvm_unlock_write();
	return 0;
}

static int map_insert_new(struct vmspace *, struct vm_map_entry *,
    const char *, void **);
static int range_enter(const char *, void *, size_t, vaddr_t *);

UPVM_API int
upvm_map(size_t size, int flags, void **addrp)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map_entry *e;
	vsize_t len;
	int error, advice;

	if (size == 0 || addrp == NULL ||
	    (flags & ~(UPVM_MAP_SEQUENTIAL | UPVM_MAP_RANDOM)) != 0 ||
	    flags == (UPVM_MAP_SEQUENTIAL | UPVM_MAP_RANDOM)) {
		upvm_log(LOG_ERR, "upvm_map: %s; pass a size > 0, flags 0, "
		    "UPVM_MAP_SEQUENTIAL or UPVM_MAP_RANDOM, and an address "
		    "pointer", size == 0 ? "size 0 is invalid" :
		    addrp == NULL ? "addrp is NULL" : "bad flags");
		return -EINVAL;
	}
	if (size > VM_MAX_REGION) {
		upvm_log(LOG_ERR, "upvm_map: size %zu is larger than a region "
		    "can be (8 TiB); map several regions", size);
		return -ENOMEM;
	}
	len = round_page(size);
	advice = flags == UPVM_MAP_SEQUENTIAL ? VM_ADV_SEQUENTIAL :
	    flags == UPVM_MAP_RANDOM ? VM_ADV_RANDOM : VM_ADV_NORMAL;
	if ((error = api_enter("upvm_map")) != 0)
		return error;
	if ((error = region_create(vs, 0, len, PROT_READ | PROT_WRITE, 0,
	    advice, &e)) != 0) {
		api_exit();
		upvm_log(LOG_ERR, "upvm_map: cannot map %zu bytes: %s",
		    size, strerror(-error));
		return error;
	}
	error = map_insert_new(vs, e, "upvm_map", addrp);
	api_exit();
	return error;
}

/*
 * map_insert_new: put a new region's entry in the map; *addrp its address.
 * => api entered.  0, or -EEXIST (logged, the region unmapped).
 */
static int
map_insert_new(struct vmspace *vs, struct vm_map_entry *e, const char *fn,
    void **addrp)
{
	void *va = (void *)e->e_start;
	vsize_t len = e->e_end - e->e_start;
	int error;

	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	error = vm_map_insert(&vs->vs_map, e);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	if (error != 0) {
		/* the kernel reused a range unmapped behind upvm's back */
		upvm_log(LOG_ERR, "%s: new region %p overlaps a region upvm "
		    "still manages; unmap regions with upvm_unmap()", fn, va);
		vm_map_entry_free(&vs->vs_map, e);
		raw_munmap(va, len);
		return error;
	}
	*addrp = va;
	return 0;
}

/* map_file_check: upvm_map_file's arguments; => 0 or -EINVAL (logged) */
static int
map_file_check(long long off, size_t len, int flags, void **addrp)
{
	int share = flags & (UPVM_MAP_SHARED | UPVM_MAP_PRIVATE);
	const char *what = NULL;

	if (addrp == NULL)
		what = "addrp is NULL";
	else if ((flags & ~(UPVM_MAP_SHARED | UPVM_MAP_PRIVATE |
	    UPVM_MAP_RDONLY | UPVM_MAP_SEQUENTIAL | UPVM_MAP_RANDOM)) != 0 ||
	    (flags & UPVM_MAP_SEQUENTIAL && flags & UPVM_MAP_RANDOM))
		what = "bad flags";
	else if (share != UPVM_MAP_SHARED && share != UPVM_MAP_PRIVATE)
		what = "pass exactly one of UPVM_MAP_SHARED and "
		    "UPVM_MAP_PRIVATE";
	else if (off < 0 || !page_aligned((uint64_t)off))
		what = "the offset must be >= 0 and page aligned";
	else if (len == 0)
		what = "length 0 is invalid";
	else if (len > VM_MAX_REGION)
		what = "the length is larger than a region can be (8 TiB)";
	else if ((uint64_t)off + round_page(len) < (uint64_t)off ||
	    (uint64_t)off + round_page(len) > (uint64_t)INT64_MAX)
		what = "offset + length overflows";
	if (what == NULL)
		return 0;
	upvm_log(LOG_ERR, "upvm_map_file: %s (offset %lld, length %zu, flags "
	    "%#x)", what, off, len, flags);
	return -EINVAL;
}

UPVM_API int
upvm_map_file(int fd, long long off, size_t len, int flags, void **addrp)
{
	struct vmspace *vs = &upvm_vs;
	bool rdonly = (flags & UPVM_MAP_RDONLY) != 0;
	bool shared = (flags & UPVM_MAP_SHARED) != 0;
	struct vm_map_entry *e;
	struct vnode *vn;
	int error, advice;

	if ((error = map_file_check(off, len, flags, addrp)) != 0)
		return error;
	advice = (flags & UPVM_MAP_SEQUENTIAL) ? VM_ADV_SEQUENTIAL :
	    (flags & UPVM_MAP_RANDOM) ? VM_ADV_RANDOM : VM_ADV_NORMAL;
	if ((error = api_enter("upvm_map_file")) != 0)
		return error;
	if ((error = vnode_find(fd, shared && !rdonly ? VNODE_WRITABLE : 0,
	    &vn)) != 0) {
		api_exit();
		return error;
	}
	if ((error = region_create(vs, 0, round_page(len), rdonly ?
	    PROT_READ : PROT_READ | PROT_WRITE, 0, advice, &e)) != 0) {
		api_exit();
		pager_unref(&vn->vn_pager);
		upvm_log(LOG_ERR, "upvm_map_file: cannot map %zu bytes: %s",
		    len, strerror(-error));
		return error;
	}
	/* the entry takes the reference vnode_find took */
	region_attach_file(e, vn, (voff_t)off, shared, rdonly);
	error = map_insert_new(vs, e, "upvm_map_file", addrp);
	api_exit();
	return error;
}

UPVM_API int
upvm_sync(void *addr, size_t len, int flags)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map *map = &vs->vs_map;
	int mode = flags & (UPVM_SYNC_ASYNC | UPVM_SYNC_SYNC);
	vaddr_t end;
	int error;

	if ((flags & ~(UPVM_SYNC_ASYNC | UPVM_SYNC_SYNC |
	    UPVM_SYNC_INVALIDATE)) != 0 || (mode != UPVM_SYNC_ASYNC &&
	    mode != UPVM_SYNC_SYNC)) {
		upvm_log(LOG_ERR, "upvm_sync: flags %#x are invalid: pass "
		    "UPVM_SYNC_ASYNC or UPVM_SYNC_SYNC, maybe with "
		    "UPVM_SYNC_INVALIDATE", flags);
		return -EINVAL;
	}
	if ((error = range_enter("upvm_sync", addr, len, &end)) != 0)
		return error;
	/* the write lock: no fault resolves and no pageout collects while
	   the range is written and (INVALIDATE) dropped */
	error = wb_range(vs, (vaddr_t)addr, end, mode == UPVM_SYNC_SYNC);
	if (error == 0 && (flags & UPVM_SYNC_INVALIDATE))
		(void)wb_invalidate(vs, (vaddr_t)addr, end);
	vm_rwlock_unlock(&map->m_lock);
	api_exit();
	return error;
}

/*
 * range_check: [addr, addr + len) is a page-aligned, non-empty range with
 * no overflow; *endp its rounded end.
 */
static int
range_check(const char *fn, void *addr, size_t len, vaddr_t *endp)
{
	vaddr_t va = (vaddr_t)addr;

	if (!page_aligned(va) || len == 0 || len > VM_MAX_ADDRESS ||
	    va + round_page(len) < va) {
		upvm_log(LOG_ERR, "%s: range %p+%zu is invalid: the address "
		    "must be page aligned and the length > 0", fn, addr, len);
		return -EINVAL;
	}
	*endp = va + round_page(len);
	return 0;
}

/*
 * range_enter: validate [addr, addr + len), enter the API and write-lock
 * the map; the range must be wholly managed.
 * => on 0: api entered, map write-locked, *endp the rounded end.
 * => -EINVAL / -ENXIO (logged): nothing held.
 */
static int
range_enter(const char *fn, void *addr, size_t len, vaddr_t *endp)
{
	struct vm_map *map = &upvm_vs.vs_map;
	int error;

	if ((error = range_check(fn, addr, len, endp)) != 0 ||
	    (error = api_enter(fn)) != 0)
		return error;
	vm_rwlock_wrlock(&map->m_lock);
	if (vm_map_range_managed(map, (vaddr_t)addr, *endp))
		return 0;
	vm_rwlock_unlock(&map->m_lock);
	api_exit();
	upvm_log(LOG_ERR, "%s: %p+%zu is not wholly managed by upvm; pass "
	    "ranges from upvm_map()", fn, addr, len);
	return -EINVAL;
}

UPVM_API int
upvm_unmap(void *addr, size_t len)
{
	struct vmspace *vs = &upvm_vs;
	vaddr_t end;
	int error;

	if ((error = range_enter("upvm_unmap", addr, len, &end)) != 0)
		return error;
	/* shared file pages reach their files first, or nothing goes */
	if ((error = wb_range(vs, (vaddr_t)addr, end, false)) != 0) {
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		api_exit();
		upvm_log(LOG_ERR, "upvm_unmap: %p+%zu was not unmapped: its "
		    "file could not be written; free space or fix the file, "
		    "then unmap again", addr, len);
		return error;
	}
	error = region_remove(vs, (vaddr_t)addr, end, true);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	api_exit();
	if (error != 0)
		upvm_log(LOG_ERR, "upvm_unmap: out of memory splitting a "
		    "region; nothing was unmapped");
	return error;
}

static int
advice_check(int advice)
{
	int pattern = advice & (UPVM_ADV_NORMAL | UPVM_ADV_SEQUENTIAL |
	    UPVM_ADV_RANDOM);
	int residency = advice & (UPVM_ADV_WILLNEED | UPVM_ADV_DONTNEED);

	if (advice == 0 || (advice & ~(pattern | residency)) != 0 ||
	    (pattern & (pattern - 1)) != 0 ||
	    (residency & (residency - 1)) != 0) {
		upvm_log(LOG_ERR, "upvm_advise: advice %#x is invalid: use one "
		    "of UPVM_ADV_NORMAL/SEQUENTIAL/RANDOM and/or one of "
		    "UPVM_ADV_WILLNEED/DONTNEED", advice);
		return -EINVAL;
	}
	return 0;
}

UPVM_API int
upvm_advise(void *addr, size_t len, int advice)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map *map = &vs->vs_map;
	vaddr_t start = (vaddr_t)addr, end;
	int error;

	if ((error = advice_check(advice)) != 0 ||
	    (error = range_enter("upvm_advise", addr, len, &end)) != 0)
		return error;
	if (advice & (UPVM_ADV_NORMAL | UPVM_ADV_SEQUENTIAL |
	    UPVM_ADV_RANDOM)) {
		if ((error = region_clip(map, start, end)) != 0) {
			vm_rwlock_unlock(&map->m_lock);
			api_exit();
			upvm_log(LOG_ERR, "upvm_advise: out of memory "
			    "splitting a region; nothing changed");
			return error;
		}
		region_pattern(map, start, end,
		    (advice & UPVM_ADV_SEQUENTIAL) ? VM_ADV_SEQUENTIAL :
		    (advice & UPVM_ADV_RANDOM) ? VM_ADV_RANDOM :
		    VM_ADV_NORMAL);
	}
	if (advice & UPVM_ADV_DONTNEED)
		region_dontneed(vs, start, end);
	vm_rwlock_unlock(&map->m_lock);
	if (advice & UPVM_ADV_WILLNEED) {
		error = fault_populate(vs, start, end, false);
		if (error != 0)
			upvm_log(LOG_ERR, "upvm_advise: WILLNEED stopped at "
			    "an error: %s", strerror(-error));
	}
	api_exit();
	return error;
}

long
upvm_core_pagein(int stop_ms)
{
	struct vmspace *vs = &upvm_vs;
	uint64_t before;
	long n;

	if (vm_tl_inside > 0 || atomic_load(&vm_failed) ||
	    pthread_rwlock_tryrdlock(&upvm_lock) != 0)
		return -EDEADLK;
	if (!upvm_running) {
		pthread_rwlock_unlock(&upvm_lock);
		return -ENXIO;
	}
	vm_tl_inside++;
	if (vs->vs_pd != NULL && !pd_stop_within(vs->vs_pd, stop_ms)) {
		n = -EDEADLK;
	} else {
		before = atomic_load(&vs->vs_stats.st_pageins);
		(void)vmspace_pagein(vs);
		n = (long)(atomic_load(&vs->vs_stats.st_pageins) - before);
	}
	vm_tl_inside--;
	pthread_rwlock_unlock(&upvm_lock);
	return n;
}

UPVM_API int
upvm_stats(struct upvm_stats *out)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map_entry *e;
	struct upvm_stats st;
	int error;

	if (out == NULL) {
		upvm_log(LOG_ERR, "upvm_stats: the output pointer is NULL");
		return -EINVAL;
	}
	if ((error = api_enter("upvm_stats")) != 0)
		return error;
	memset(&st, 0, sizeof(st));
	stats_snapshot(&vs->vs_stats, &st);
	vm_rwlock_rdlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e))
		st.regions++;
	st.mapped_bytes = vs->vs_map.m_size;
	/* rate-limited: callers poll upvm_stats, and reading numa_maps
	   costs a walk of every VMA */
	if (vs->vs_numa != NULL) {
		if (vs->vs_numa->ns_topo.nt_nnodes > 1)
			numa_resync(vs->vs_numa, &vs->vs_map);
		numa_stats(vs->vs_numa, &st);
	}
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	st.resident_pages = (uint64_t)atomic_load(&vs->vs_resident);
	if (st.numa_nodes == 1)
		st.node_resident[0] = st.resident_pages;
	st.meta_bytes = kmem_bytes();
	st.handlers = (unsigned)vs->vs_fault.fe_nthreads;
	st.features = vs->vs_pmap.pm_features;
	st.move_recounts = atomic_load(&vs->vs_pmap.pm_move_recounts);
	st.pageout = vs->vs_pageout;
	st.cpu_fault_ns = atomic_load(&vs->vs_fault_cpu_done) +
	    fault_cpu_ns(vs);
	st.cpu_pageout_ns = atomic_load(&vs->vs_pd_cpu_done);
	st.reads_inflight = (uint64_t)atomic_load(&vs->vs_reads_inflight);
	st.writes_inflight = (uint64_t)atomic_load(&vs->vs_writes_inflight);
	if (vs->vs_pd != NULL) {
		st.cpu_pageout_ns += pd_cpu_ns(vs->vs_pd) +
		    flusher_cpu_ns(vs);
		st.budget_pages = (uint64_t)atomic_load(
		    &vs->vs_pd->pdd_budget);
		st.resident_peak = (uint64_t)atomic_load(&vs->vs_pd->pdd_peak);
		st.ra_window = (unsigned)pd_ra_window(vs->vs_pd,
		    vs->vs_cc.cc_readahead);
		st.ra_ring = pd_probe_ring(vs->vs_pd);
		st.swap_used_pages = swap_used(vs->vs_swap);
		st.cpu_io_ns = swap_cpu_ns(vs->vs_swap);
	}
	api_exit();
	*out = st;
	return 0;
}

int
upvm_inject_file_failure(void *addr, bool write, int nth)
{
	struct vm_map_entry *e;
	int error;

	if ((error = api_enter("upvm_inject_file_failure")) != 0)
		return error;
	vm_rwlock_rdlock(&upvm_vs.vs_map.m_lock);
	e = vm_map_lookup(&upvm_vs.vs_map, (vaddr_t)addr);
	if (e != NULL && e->e_obj != NULL)
		vnode_inject_failure(container_of(e->e_obj, struct vnode,
		    vn_pager), write, nth);
	else
		error = -EINVAL;
	vm_rwlock_unlock(&upvm_vs.vs_map.m_lock);
	api_exit();
	return error;
}

int
upvm_inject_swap_failure(bool write, int nth)
{
	int error;

	if ((error = api_enter("upvm_inject_swap_failure")) != 0)
		return error;
	if (upvm_vs.vs_swap != NULL)
		swap_inject_failure(upvm_vs.vs_swap, write, nth);
	else
		error = -ENXIO;
	api_exit();
	return error;
}

int
upvm_swap_reap(void)
{
	int error;

	if ((error = api_enter("upvm_swap_reap")) != 0)
		return error;
	error = upvm_vs.vs_swap != NULL ? swap_reap(upvm_vs.vs_swap) : -ENXIO;
	api_exit();
	return error;
}

int
upvm_inject_swap_gate(bool write, bool hold)
{
	int error;

	if ((error = api_enter("upvm_inject_swap_gate")) != 0)
		return error;
	error = upvm_vs.vs_swap != NULL ? swap_inject_gate(upvm_vs.vs_swap,
	    write, hold) : -ENXIO;
	/* a batch that loaded the open gate sets pdd_writing before its
	   loads and clears it after its last write: seq_cst on both sides */
	if (error == 0 && write && hold && upvm_vs.vs_pd != NULL)
		pd_wait_writes(upvm_vs.vs_pd);
	api_exit();
	return error;
}

/*
 * inject_pd_hook: set the daemon's stage hook (unstage false) or unstage
 * hook (true) for the test entry points below.
 */
static int
inject_pd_hook(const char *what, bool unstage, void (*hook)(void *, int))
{
	struct pdaemon *pd = upvm_vs.vs_pd;
	int error;

	if ((error = api_enter(what)) != 0)
		return error;
	if (pd != NULL && upvm_vs.vs_pageout == UPVM_PAGEOUT_MOVE)
		atomic_store(unstage ? &pd->pdd_unstage_hook :
		    &pd->pdd_stage_hook, hook);
	else
		error = -ENXIO;
	api_exit();
	return error;
}

int
upvm_inject_unstage_hook(void (*hook)(void *, int))
{
	return inject_pd_hook("upvm_inject_unstage_hook", true, hook);
}

int
upvm_inject_stage_hook(void (*hook)(void *, int))
{
	return inject_pd_hook("upvm_inject_stage_hook", false, hook);
}

int
upvm_inject_pagein_hook(void (*hook)(void *, int))
{
	int error;

	if ((error = api_enter("upvm_inject_pagein_hook")) != 0)
		return error;
	atomic_store(&upvm_vs.vs_fault.fe_pagein_hook, hook);
	fault_listen_all(&upvm_vs, hook != NULL);
	api_exit();
	return 0;
}
