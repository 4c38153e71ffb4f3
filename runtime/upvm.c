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
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amap.h"
#include "config.h"
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

static struct vmspace upvm_vs;
static pthread_rwlock_t upvm_lock = PTHREAD_RWLOCK_INITIALIZER;
static bool upvm_running;		/* [upvm_lock] */
static struct upvm_config upvm_cfg;	/* [upvm_lock] */

/* features asked of the kernel; each use checks pmap_has() */
#define UPVM_WANT_FEATURES	(UFFD_FEATURE_THREAD_ID |		\
				 UFFD_FEATURE_PAGEFAULT_FLAG_WP |	\
				 UFFD_FEATURE_POISON)

/* and for the move pageout protocol (see pdaemon.h) */
#define UPVM_MOVE_FEATURES	(UFFD_FEATURE_MOVE | UFFD_FEATURE_WP_ASYNC)

/* the smallest budget that leaves the daemon room to work: 4 MiB */
#define UPVM_MIN_BUDGET		1024

static struct swap *upvm_swap;		/* for the anon release hook */

static void
upvm_swap_release(uint64_t slot)
{
	swap_free(upvm_swap, slot, 1);
}

/*
 * api_enter: hold upvm_lock for reading for one API call.
 * => -ENXIO (logged) if upvm is not initialized.
 */
static int
api_enter(const char *fn)
{
	pthread_rwlock_rdlock(&upvm_lock);
	if (upvm_running)
		return 0;
	pthread_rwlock_unlock(&upvm_lock);
	upvm_log(LOG_ERR, "%s: upvm is not initialized; call upvm_init() "
	    "first", fn);
	return -ENXIO;
}

static void
api_exit(void)
{
	pthread_rwlock_unlock(&upvm_lock);
}

struct vmspace *
vmspace_enter(void)
{
	pthread_rwlock_rdlock(&upvm_lock);
	if (upvm_running)
		return &upvm_vs;
	pthread_rwlock_unlock(&upvm_lock);
	return NULL;
}

void
vmspace_exit(void)
{
	pthread_rwlock_unlock(&upvm_lock);
}

/*
 * handlers_default: one fault thread per CPU.  A fault thread never
 * waits for a pagein read (it keeps up to FAULT_IO_DEPTH in flight), so
 * more threads than CPUs would only add wake-ups.
 */
static int
handlers_default(bool paging)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/*
 * pmap_setup: open the userfaultfd with the features the configuration
 * needs.  WP_ASYNC changes every write-protect fault of the descriptor, so
 * it is on only when the move pageout protocol runs: with a budget, and
 * when MOVE, WP_ASYNC and PAGEMAP_SCAN are all there (pageout=auto) or
 * asked for (pageout=move: an error without them).  numa_promote needs
 * writes to fault: the wp protocol.
 * => 0, or -errno (logged) with nothing open.
 */
static int
pmap_setup(struct pmap *pm, const struct upvm_config *cfg)
{
	bool try_move = cfg->budget != 0 && cfg->pageout != UPVM_PAGEOUT_WP &&
	    !cfg->numa_promote;
	int error;

	if (cfg->numa_promote && cfg->pageout == UPVM_PAGEOUT_MOVE) {
		upvm_log(LOG_ERR, "upvm_init: numa_promote needs writes to "
		    "demoted pages to fault, which pageout=move never makes "
		    "them do; use pageout=auto or wp");
		return -EINVAL;
	}

	error = pmap_init(pm, UPVM_WANT_FEATURES |
	    (try_move ? UPVM_MOVE_FEATURES : 0));
	if (error != 0) {
		upvm_log(LOG_ERR, "upvm_init: userfaultfd is unavailable: %s; "
		    "run as root or set vm.unprivileged_userfaultfd=1",
		    strerror(-error));
		return error;
	}
	if (!try_move || (pmap_has(pm, UPVM_MOVE_FEATURES) &&
	    pm->pm_pagemap_scan))
		return 0;
	pmap_fini(pm);
	if (cfg->pageout == UPVM_PAGEOUT_MOVE) {
		upvm_log(LOG_ERR, "upvm_init: pageout=move needs UFFDIO_MOVE, "
		    "UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (Linux 6.8 or "
		    "later); use pageout=auto or wp");
		return -EOPNOTSUPP;
	}
	return pmap_init(pm, UPVM_WANT_FEATURES);
}

/*
 * paging_setup: with a budget, the swap file and write-protect mode for
 * the regions (dirty tracking); the daemon starts after the fault threads.
 * => -errno, logged, with nothing left behind.
 */
static int
paging_setup(struct vmspace *vs, const struct upvm_config *cfg)
{
	struct swap_config sc = {
		.sc_path = cfg->swap_path[0] != '\0' ? cfg->swap_path : NULL,
		.sc_max = cfg->swap_max,
	};
	int error;

	vs->vs_regmodes = PMAP_REG_MISSING;
	if (cfg->budget == 0)
		return 0;
	if (atop(cfg->budget) < UPVM_MIN_BUDGET) {
		upvm_log(LOG_ERR, "upvm_init: budget %llu bytes is too small; "
		    "give at least 4M", (unsigned long long)cfg->budget);
		return -EINVAL;
	}
	if (!pmap_has(&vs->vs_pmap, UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		upvm_log(LOG_ERR, "upvm_init: a budget needs userfaultfd "
		    "write-protection (Linux 5.7 or later); run without one");
		return -EOPNOTSUPP;
	}
	if ((error = swap_create(&sc, &vs->vs_swap)) != 0)
		return error;
	vs->vs_pageout = pmap_has(&vs->vs_pmap, UPVM_MOVE_FEATURES) ?
	    UPVM_PAGEOUT_MOVE : UPVM_PAGEOUT_WP;
	upvm_swap = vs->vs_swap;
	amap_set_swap_release(upvm_swap_release);
	vs->vs_regmodes |= PMAP_REG_WP;
	return 0;
}

static void
paging_teardown(struct vmspace *vs)
{
	if (vs->vs_pd != NULL)
		pd_destroy(vs->vs_pd);
	vs->vs_pd = NULL;
	amap_set_swap_release(NULL);
	if (vs->vs_swap != NULL)
		swap_destroy(vs->vs_swap);
	vs->vs_swap = upvm_swap = NULL;
}

/*
 * Fork.  prepare: hold upvm_lock (no API call in progress, none starts)
 * and stop the runtime's threads (vmspace.c has why); parent: start them
 * again; child: make the metadata the child's and start its runtime.
 * A child that cannot is left with its regions unmanaged (logged).
 */
static void
upvm_atfork_prepare(void)
{
	pthread_rwlock_wrlock(&upvm_lock);
	if (upvm_running)
		vmspace_stop(&upvm_vs);
}

static void
upvm_atfork_parent(void)
{
	if (upvm_running && vmspace_start(&upvm_vs) != 0)
		upvm_log(LOG_ERR, "upvm: cannot restart after fork; faults "
		    "on managed memory will hang");
	pthread_rwlock_unlock(&upvm_lock);
}

static void
upvm_atfork_child(void)
{
	if (upvm_running && (vmspace_fork_child(&upvm_vs) != 0 ||
	    vmspace_start(&upvm_vs) != 0))
		upvm_log(LOG_ERR, "upvm: the child of fork runs without upvm; "
		    "faults on its managed memory will hang");
	/*
	 * The lock is write-held, but the writer glibc recorded is the
	 * parent's thread id, which this thread no longer has: unlocking
	 * would corrupt it.  Nobody else exists here to hold it: start anew.
	 */
	(void)pthread_rwlock_init(&upvm_lock, NULL);
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

UPVM_API int
upvm_init(const struct upvm_config *cfgp)
{
	struct vmspace *vs = &upvm_vs;
	struct upvm_config cfg;
	int error, nthreads;

	if (cfgp == NULL) {
		if ((error = upvm_config_from_env(&cfg)) != 0)
			return error;
	} else {
		cfg = *cfgp;
		if ((error = config_check(&cfg)) != 0)
			return error;
	}
	pthread_rwlock_wrlock(&upvm_lock);
	if (upvm_running) {
		pthread_rwlock_unlock(&upvm_lock);
		upvm_log(LOG_ERR, "upvm_init: upvm is already initialized; "
		    "call upvm_fini() before initializing again");
		return -EBUSY;
	}
	upvm_log_set_level(cfg.log_level);
	memset(vs, 0, sizeof(*vs));
	if ((error = numa_state_create(&cfg, &vs->vs_numa)) != 0) {
		pthread_rwlock_unlock(&upvm_lock);
		return error;
	}
	/* node budgets without a budget: swap once every node is full */
	if (cfg.budget == 0)
		cfg.budget = numa_budget_total(vs->vs_numa);
	if ((error = pmap_setup(&vs->vs_pmap, &cfg)) != 0) {
		numa_state_destroy(vs->vs_numa);
		pthread_rwlock_unlock(&upvm_lock);
		return error;
	}
	amap_init_pools();
	vm_map_init(&vs->vs_map);
	vs->vs_cc.cc_cluster = (int)cfg.cluster_pages;
	vs->vs_cc.cc_seq_max = (int)cfg.seq_max_pages;
	nthreads = cfg.handlers != 0 ? (int)cfg.handlers :
	    handlers_default(cfg.budget != 0);
	if ((error = paging_setup(vs, &cfg)) != 0)
		goto fail;
	vs->vs_nthreads = nthreads;
	vs->vs_spin_us = cfg.spin_us;
	vs->vs_pin = cfg.pin_handlers;
	vs->vs_budget = (long)atop(cfg.budget);
	/* slack: one window in flight per fault thread */
	vs->vs_slack = (long)nthreads * cfg.seq_max_pages;
	vs->vs_threshold = round_page(cfg.threshold);
	if ((error = vmspace_start(vs)) != 0)
		goto fail;
	upvm_fork_handlers();
	upvm_cfg = cfg;
	upvm_running = true;
	pthread_rwlock_unlock(&upvm_lock);
	upvm_log(LOG_INFO, "upvm %s: %d fault threads, cluster %u, seq_max "
	    "%u, budget %llu, features %#llx", UPVM_VERSION, nthreads,
	    cfg.cluster_pages, cfg.seq_max_pages,
	    (unsigned long long)cfg.budget,
	    (unsigned long long)vs->vs_pmap.pm_features);
	return 0;
fail:
	paging_teardown(vs);
	vm_map_destroy(&vs->vs_map);
	amap_fini_pools();
	numa_state_destroy(vs->vs_numa);
	pmap_fini(&vs->vs_pmap);
	pthread_rwlock_unlock(&upvm_lock);
	return error;
}

/*
 * fini_pagein: bring every swapped-out page back in, so that the regions
 * left mapped after upvm_fini() keep all their data.
 * => no locks held; upvm_lock write-held by the caller.
 */
static void
fini_pagein(struct vmspace *vs)
{
	struct vm_map_entry *e;
	vaddr_t va = 0, start, end;

	for (;;) {
		vm_rwlock_rdlock(&vs->vs_map.m_lock);
		if ((e = vm_map_first_ge(&vs->vs_map, va)) != NULL) {
			start = MAX(va, e->e_start);
			end = e->e_end;
		}
		vm_rwlock_unlock(&vs->vs_map.m_lock);
		if (e == NULL)
			return;
		if (fault_populate(vs, start, end) != 0)
			upvm_log(LOG_ERR, "upvm_fini: paging [%#lx, %#lx) back "
			    "in failed; what could not be read raises SIGBUS",
			    (unsigned long)start, (unsigned long)end);
		va = end;
	}
}

UPVM_API int
upvm_fini(void)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map_entry *e;
	int left = 0;

	pthread_rwlock_wrlock(&upvm_lock);
	if (!upvm_running) {
		pthread_rwlock_unlock(&upvm_lock);
		upvm_log(LOG_ERR, "upvm_fini: upvm is not initialized");
		return -ENXIO;
	}
	/* what is still mapped becomes ordinary memory: page it all in */
	if (vs->vs_pd != NULL)
		pd_stop(vs->vs_pd);
	if (vs->vs_swap != NULL)
		fini_pagein(vs);
	fault_stop(vs);
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	for (e = vm_map_first_ge(&vs->vs_map, 0); e != NULL;
	    e = vm_map_next(&vs->vs_map, e), left++)
		pmap_unregister(&vs->vs_pmap, e->e_start,
		    e->e_end - e->e_start);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	vm_map_destroy(&vs->vs_map);
	paging_teardown(vs);
	amap_fini_pools();
	numa_state_destroy(vs->vs_numa);
	vs->vs_numa = NULL;
	pmap_fini(&vs->vs_pmap);
	upvm_running = false;
	pthread_rwlock_unlock(&upvm_lock);
	if (left > 0)
		upvm_log(LOG_INFO, "upvm_fini: %d regions stay mapped as "
		    "ordinary memory", left);
	return 0;
}

UPVM_API int
upvm_map(size_t size, int flags, void **addrp)
{
	struct vmspace *vs = &upvm_vs;
	struct vm_map_entry *e;
	vsize_t len;
	void *va;
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
	vm_rwlock_wrlock(&vs->vs_map.m_lock);
	error = vm_map_insert(&vs->vs_map, e);
	vm_rwlock_unlock(&vs->vs_map.m_lock);
	va = (void *)e->e_start;
	if (error != 0) {
		/* the kernel reused a range unmapped behind upvm's back */
		upvm_log(LOG_ERR, "upvm_map: new region %p overlaps a region "
		    "upvm still manages; unmap regions with upvm_unmap()", va);
		vm_map_entry_free(&vs->vs_map, e);
		raw_munmap(va, len);
	}
	api_exit();
	if (error == 0)
		*addrp = va;
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
		error = fault_populate(vs, start, end);
		if (error != 0)
			upvm_log(LOG_ERR, "upvm_advise: WILLNEED stopped at "
			    "an error: %s", strerror(-error));
	}
	api_exit();
	return error;
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
	st.pageout = vs->vs_pageout;
	st.cpu_fault_ns = atomic_load(&vs->vs_fault_cpu_done) +
	    fault_cpu_ns(vs);
	st.cpu_pageout_ns = atomic_load(&vs->vs_pd_cpu_done);
	st.reads_inflight = (uint64_t)atomic_load(&vs->vs_reads_inflight);
	st.writes_inflight = (uint64_t)atomic_load(&vs->vs_writes_inflight);
	if (vs->vs_pd != NULL) {
		st.cpu_pageout_ns += pd_cpu_ns(vs->vs_pd);
		st.budget_pages = (uint64_t)vs->vs_pd->pdd_marks.pm_budget;
		st.resident_peak = (uint64_t)atomic_load(&vs->vs_pd->pdd_peak);
		st.swap_used_pages = swap_used(vs->vs_swap);
	}
	api_exit();
	*out = st;
	return 0;
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
upvm_inject_swap_gate(bool write, bool hold)
{
	int error;

	if ((error = api_enter("upvm_inject_swap_gate")) != 0)
		return error;
	error = upvm_vs.vs_swap != NULL ? swap_inject_gate(upvm_vs.vs_swap,
	    write, hold) : -ENXIO;
	api_exit();
	return error;
}

int
upvm_inject_stage_hook(void (*hook)(void *, int))
{
	int error;

	if ((error = api_enter("upvm_inject_stage_hook")) != 0)
		return error;
	if (upvm_vs.vs_pd != NULL && upvm_vs.vs_pageout == UPVM_PAGEOUT_MOVE)
		atomic_store(&upvm_vs.vs_pd->pdd_stage_hook, hook);
	else
		error = -ENXIO;
	api_exit();
	return error;
}
