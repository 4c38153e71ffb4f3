/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swap.c: the swap pager: a private swap file, its slot allocator, and
 * the I/O to it.
 *
 * The file.  swap_create() makes it private: in a directory, an O_TMPFILE
 * (never visible in the directory), or where the file system lacks
 * O_TMPFILE a mkostemp() file unlinked at once; or, when the user names a
 * path that does not exist yet, that file, created 0600 with O_EXCL and
 * unlinked by swap_destroy() in the creating process.  O_DIRECT is set
 * with fcntl(F_SETFL) after the open rather than passed to open(): on a
 * file system that refuses it, open(O_CREAT | O_DIRECT) has already
 * created the named file when it fails with EINVAL, and O_TMPFILE's own
 * "unsupported" is EINVAL too.  Without O_DIRECT (ramfs, some FUSE, or
 * sc_nodirect), every transfer is followed by sync_file_range() and
 * POSIX_FADV_DONTNEED of its range (ring_*_nocache()): swap data in the
 * page cache would be memory outside upvm's budget, dirty at that, and
 * the kernel would charge it to the same cgroup that the budget is meant
 * to keep the application inside.
 *
 * The file grows, never shrinks: when an allocation needs slots past its
 * end, fallocate() extends it by SWAP_GROW (less at the cap; when the
 * disk cannot take a whole step, by just what the allocation needs), so
 * that a full disk is found at allocation time as -ENOSPC, not at
 * write-back time as a lost page.  Where fallocate() is not supported the
 * file is extended sparse with ftruncate(), and a full disk shows as
 * -ENOSPC from the write instead.  Slot s lives at file offset
 * (s - 1 - sw_flo) * PAGE_SIZE.
 *
 * A word on tiers.  A swap is a file, a remote store (remote.h), or both,
 * one after the other: each tier has its own range of slots (a cap of
 * sc_max each, with one slot between them that is never allocated, so
 * that no run and no read of neighbouring slots spans the two), and
 * swap_alloc tries the preferred tier first, the other when it is full.
 * I/O goes where its slots live (swp_is_remote).
 *
 * A word on the allocator.  One bit per slot of the cap, and a 32-bit
 * reference count per slot, in one MAP_SHARED | MAP_ANONYMOUS area, so
 * that after fork() parent and child allocate from the same bitmap and
 * count references in the same counts; the lock is a process-shared,
 * robust mutex in the same area (a process killed while holding it does
 * not hang the others).  MAP_NORESERVE and the kernel's lazy allocation
 * make the area cost only the pages touched: the bitmap and counts of
 * slots that were never handed out are never touched (swap_check() scans
 * up to the highest slot ever allocated, ss_hiwater, not the cap).
 * Allocation is next fit over the bitmap from ss_cursor (one per tier),
 * wrapping once within the tier;
 * swap_free() pulls the cursor back to the lowest slot it frees, so a
 * freed run is the first place tried and is reused when the next run fits
 * in it, before the file grows for it (the file never shrinks, and runs
 * freed together are usually the size of the clusters written next).
 * Runs never wrap past the cap.  Beside them, one bitmap per process of
 * the family says which references are that process's (swaphold.h):
 * swp_alloc reaps the holders of gone processes before the file grows and
 * when the swap is full.
 *
 * File growth runs outside ss_lock (fallocate() allocates blocks and can
 * wait on the journal), under ss_grow: the run is reserved under ss_lock
 * first, the file grown, and the run released again if the file system
 * refused.  Lock order: ss_grow -> ss_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kmem.h"
#include "log.h"
#include "pagehash.h"
#include "remote.h"
#include "seal.h"
#include "ringq.h"
#include "swap.h"
#include "swaphold.h"
#include "sys.h"
#include "uring.h"

#define SWAP_BOUNCE_PAGES	64	/* a pageout run, at most */
#define SWAP_BOUNCE_KEEP	((int)nitems(((struct swap *)0)->sw_bounce))

#define SWAP_DEFAULT_MAX	((uint64_t)64 << 30)
#define SWAP_DEFAULT_DIR	"/var/tmp"
#define SWAP_NONE		UINT64_MAX	/* swp_find: no run */
#define SWAP_SYNC_TAG		0x5357		/* swap_*_sync's completions */
#define SWAP_REAP_NS		1000000000u	/* swp_alloc's swap_reap: at most
						   once in this long */

/*
 * The state that every process forked from swap_create()'s caller shares.
 * Slot s is bit s - 1 of ss_bitmap and entry s - 1 of ss_count.
 *
 * Locks protecting struct members:
 *	I  immutable after swap_create()   s  ss_lock
 *	g  written holding ss_grow and ss_lock; read holding either
 * Invariants (swap_check()): bit i set iff ss_count[i] > 0; ss_used ==
 * bits set <= ss_nslots; no bit set at or past ss_hiwater; unless an
 * allocation is growing the file (ss_growing > 0), every set bit lies
 * inside ss_filesize; the file is at least ss_filesize bytes long.
 */
struct swap_shared {
	pthread_mutex_t	 ss_lock;	/* robust, process-shared */
	pthread_mutex_t	 ss_grow;	/* serializes growth; before ss_lock */
	pid_t		 ss_holder;	/* [s] tid holding ss_lock (debug) */
	uint64_t	 ss_used;	/* [s] slots allocated */
	int		 ss_ntier;	/* [I] 1, or 2: file and remote */
	uint64_t	 ss_tlo[2];	/* [I] tier t's bits: [ss_tlo, ss_thi), */
	uint64_t	 ss_thi[2];	/* [I] tier 0 the one tried first */
	uint64_t	 ss_cursor[2];	/* [s] next fit per tier: first bit */
	uint64_t	 ss_file_lo;	/* [I] the file's bits: [lo, hi); */
	uint64_t	 ss_file_hi;	/* [I] bit lo is file offset 0 */
	uint64_t	 ss_hiwater;	/* [s] highest bit ever set, plus 1 */
	unsigned	 ss_growing;	/* [s] runs reserved, file not grown */
	uint64_t	 ss_filesize;	/* [g] bytes of file allocated */
	uint64_t	 ss_nslots;	/* [I] the cap, in slots */
	size_t		 ss_maplen;	/* [I] bytes of this mapping */
	/* fork keeps addresses: these point into the area in every process */
	uint64_t	*ss_bitmap;	/* [I] contents [s]: 1 = allocated */
	uint32_t	*ss_count;	/* [I] contents [s]: references */
	uint64_t	*ss_hash;	/* [I] contents: page_hash() of the
					   data, written by the allocating
					   process before it shares the slot,
					   read-only while the slot is held */
	/* sealed swaps (remote, or --swap-encrypt): see seal.h */
	_Atomic uint64_t ss_gen_next;	/* [a] generations handed out */
	uint64_t	*ss_gen;	/* [I] contents: by slot (index 0
					   unused), the generation its data
					   was sealed with; written by the
					   writer before the write, read-only
					   while the slot is held; NULL: not
					   sealed */
	uint8_t		*ss_tag;	/* [I] contents: by slot, SEAL_TAG
					   bytes of tag (local file only;
					   remote values carry their own) */
	uint64_t	 ss_reaped_ns;	/* [s] last swap_reap by swp_alloc
					   (CLOCK_MONOTONIC) */
	struct swap_holders ss_holders;	/* which process holds which
					   references (swaphold.h) */
};

/*
 * struct swap with what only swap.c needs: the path as given.  The file
 * never keeps a name: one made in a directory has none (O_TMPFILE, or
 * unlinked at once), and a new file of a given name is unlinked right
 * after it is created.  So nothing is left behind, even by SIGKILL, and
 * a program started by the program (exec under the preload, the same
 * UPVM_SWAP) makes its own file at the same name.
 */
struct swap_file {
	struct swap	 sf_swap;	/* first: swap_file_of() */
	size_t		 sf_len;	/* [I] bytes of this kmem_alloc */
	char		 sf_path[];	/* [I] directory or file, as given */
};

static struct swap_file *
swap_file_of(struct swap *sw)
{
	return container_of(sw, struct swap_file, sf_swap);
}

/* swp_is_remote: slot lives in the remote store */
static inline bool
swp_is_remote(const struct swap *sw, uint64_t slot)
{
	return sw->sw_remote != NULL && slot - 1 >= sw->sw_rlo &&
	    slot - 1 < sw->sw_rhi;
}

/* swp_foff: the file offset of slot (a slot of the file's tier) */
static inline uint64_t
swp_foff(const struct swap *sw, uint64_t slot)
{
	VM_ASSERT(slot - 1 >= sw->sw_flo);
	return ptoa(slot - 1 - sw->sw_flo);
}

/* ---------------------------------------------------------------- */
/* the shared lock */

#ifdef UPVM_DEBUG_CHECKS
/*
 * swp_self: the calling thread's id, asked once (a system call per lock
 * was 80k calls a minute of the pageout daemon).  A fork child's thread
 * keeps its parent's: still its own while it holds the lock, which is
 * all the check asks.
 */
static pid_t
swp_self(void)
{
	static __thread pid_t self;

	if (self == 0)
		self = sys_gettid();
	return self;
}
#define SWP_ASSERT_LOCKED(ss)	VM_ASSERT((ss)->ss_holder == swp_self())
#else
#define SWP_ASSERT_LOCKED(ss)	((void)0)
#endif

/*
 * swp_mutex_lock: lock a robust mutex.  EOWNERDEAD: a process died holding
 * it, maybe halfway through an update; we carry on (swap_check() tells
 * whether the state survived) rather than hang every other process.
 */
static void
swp_mutex_lock(pthread_mutex_t *m)
{
	int error = pthread_mutex_lock(m);

	if (error == EOWNERDEAD) {
		(void)pthread_mutex_consistent(m);
		upvm_log(LOG_WARN, "swap: a process died holding the swap "
		    "lock; its last allocation may be lost");
		error = 0;
	}
	VM_ASSERT(error == 0);
}

static void
swp_lock(struct swap_shared *ss)
{
	swp_mutex_lock(&ss->ss_lock);
#ifdef UPVM_DEBUG_CHECKS
	ss->ss_holder = swp_self();
#endif
}

static void
swp_unlock(struct swap_shared *ss)
{
	SWP_ASSERT_LOCKED(ss);
#ifdef UPVM_DEBUG_CHECKS
	ss->ss_holder = 0;
#endif
	(void)pthread_mutex_unlock(&ss->ss_lock);
}

/* ---------------------------------------------------------------- */
/* the holder of a process's references (swaphold.h) */

/*
 * This process's pid, asked once (the holder is checked on every
 * allocation and free).  A fork child asks again in its fork handler;
 * fork handlers run in the order they were registered, and the preload
 * registers upvm's before this constructor runs, so swap_fork_child, the
 * child's first swap call, sets it too.  Never 0 in a child: a vfork
 * child shares this variable and must not be the one that fills it in.
 */
static _Atomic pid_t swp_pid;

static void
swp_atfork_child(void)
{
	atomic_store_explicit(&swp_pid, getpid(), memory_order_relaxed);
}

__attribute__((constructor)) static void
swp_atfork_register(void)
{
	atomic_store_explicit(&swp_pid, getpid(), memory_order_relaxed);
	(void)pthread_atfork(NULL, NULL, swp_atfork_child);
}

static pid_t
swp_getpid(void)
{
	pid_t pid = atomic_load_explicit(&swp_pid, memory_order_relaxed);

	if (pid == 0) {
		pid = getpid();
		atomic_store_explicit(&swp_pid, pid, memory_order_relaxed);
	}
	return pid;
}

/* swp_holder: this process's holder entry, SWH_NONE if not recorded */
static int
swp_holder(const struct swap *sw)
{
	return sw->sw_holder_pid == swp_getpid() ? sw->sw_holder : SWH_NONE;
}

/*
 * swp_claim: a holder entry for the calling process: the entry pending
 * for it (a fork child's: h, with nonce), else a free one (when the table
 * is full, after a reap of the gone).
 * => takes and drops ss_lock; reads /proc without it.
 */
static void
swp_claim(struct swap *sw, int h, uint64_t nonce)
{
	static bool told;
	struct swap_shared *ss = sw->sw_shared;
	uint64_t start = 0, pidns = 0;
	bool reapable;
	pid_t pid;

	reapable = swh_self(&pid, &start, &pidns);
	atomic_store_explicit(&swp_pid, pid, memory_order_relaxed);
	sw->sw_holder_pid = pid;
	if (h != SWH_NONE) {
		swp_lock(ss);
		if (swh_adopt(&ss->ss_holders, h, nonce, pid, start, pidns,
		    reapable))
			sw->sw_holder = h;
		swp_unlock(ss);
		/* lost, a bug: the references are nobody's (a leak), never
		   recorded twice */
		VM_ASSERT(sw->sw_holder == h);
		return;
	}
	for (int tries = 0; tries < 2; tries++) {
		swp_lock(ss);
		sw->sw_holder = swh_claim(&ss->ss_holders, pid, start, pidns,
		    reapable);
		swp_unlock(ss);
		if (sw->sw_holder != SWH_NONE || swap_reap(sw) == 0)
			break;
	}
	if (sw->sw_holder == SWH_NONE && !told) {
		told = true;
		upvm_log(LOG_WARN, "swap: %d processes share one swap file; "
		    "the swap slots of process %d are freed only by "
		    "upvm_fini or when the last process closes the file",
		    SWAP_HOLDERS, (int)pid);
	}
}

/*
 * swp_give_back: drop holder h's references (its bits first, then the
 * counts: swaphold.h) and free its entry.  => ss_lock held
 * => the slots whose reference went
 */
static uint64_t swp_give_back(struct swap *sw, int h);

/*
 * swp_shared_create: the shared area for a cap of nslots.
 * => 0, or -ENOMEM / the mmap error (logged).
 */
static int
swp_shared_create(uint64_t nslots, bool gens, bool tags,
    struct swap_shared **out)
{
	pthread_mutexattr_t attr;
	struct swap_shared *ss;
	size_t hdr, bitmap, counts, hashes, gsz, tsz, holders, len;
	void *p;

	hdr = (sizeof(*ss) + 63) & ~(size_t)63;
	bitmap = (size_t)((nslots + 63) / 64) * sizeof(uint64_t);
	counts = ((size_t)nslots * sizeof(uint32_t) + 7) & ~(size_t)7;
	hashes = (size_t)nslots * sizeof(uint64_t);
	gsz = gens ? (size_t)(nslots + 1) * sizeof(uint64_t) : 0;
	tsz = tags ? ((size_t)(nslots + 1) * SEAL_TAG + 7) & ~(size_t)7 : 0;
	holders = swh_bytes(nslots);
	len = round_page(hdr + bitmap + counts + hashes + gsz + tsz +
	    holders);
	p = raw_mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw_mmap_failed(p)) {
		upvm_log(LOG_ERR, "swap: cannot map %zu bytes of slot table "
		    "for %llu slots: %s; lower the cap (UPVM_SWAP_MAX)", len,
		    (unsigned long long)nslots, strerror((int)-(intptr_t)p));
		return (int)(intptr_t)p;
	}
	ss = p;				/* zeroed by the kernel */
	ss->ss_nslots = nslots;
	ss->ss_maplen = len;
	ss->ss_bitmap = (uint64_t *)((char *)p + hdr);
	ss->ss_count = (uint32_t *)((char *)p + hdr + bitmap);
	ss->ss_hash = (uint64_t *)((char *)p + hdr + bitmap + counts);
	if (gens)
		ss->ss_gen = (uint64_t *)((char *)ss->ss_hash + hashes);
	if (tags)
		ss->ss_tag = (uint8_t *)ss->ss_hash + hashes + gsz;
	swh_init(&ss->ss_holders, (uint64_t *)((char *)ss->ss_hash + hashes +
	    gsz + tsz), nslots, p);
	/* generation 0: never written (swp_seal_out) */
	atomic_init(&ss->ss_gen_next, REMOTE_VPAGES);
	(void)pthread_mutexattr_init(&attr);
	(void)pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	(void)pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	(void)pthread_mutex_init(&ss->ss_lock, &attr);
	(void)pthread_mutex_init(&ss->ss_grow, &attr);
	(void)pthread_mutexattr_destroy(&attr);
	*out = ss;
	return 0;
}

/* ---------------------------------------------------------------- */
/* the bitmap */

static inline bool
swp_isset(const struct swap_shared *ss, uint64_t i)
{
	return (ss->ss_bitmap[i / 64] >> (i % 64)) & 1;
}

/* swp_next: the first bit in [i, hi) that is `set`, or hi if none */
static uint64_t
swp_next(const uint64_t *bm, uint64_t i, uint64_t hi, bool set)
{
	uint64_t w;

	while (i < hi) {
		w = set ? bm[i / 64] : ~bm[i / 64];
		w &= ~(uint64_t)0 << (i % 64);
		if (w != 0)
			return MIN(hi, (i & ~(uint64_t)63) +
			    (uint64_t)__builtin_ctzll(w));
		i = (i & ~(uint64_t)63) + 64;
	}
	return hi;
}

/* swp_find: the first run of n clear bits inside [lo, hi), or SWAP_NONE */
static uint64_t
swp_find(const uint64_t *bm, uint64_t lo, uint64_t hi, uint64_t n)
{
	uint64_t s, e;

	for (s = lo; s < hi; s = e) {
		s = swp_next(bm, s, hi, false);
		if (hi - s < n)
			break;
		e = swp_next(bm, s, s + n, true);
		if (e == s + n)
			return s;
	}
	return SWAP_NONE;
}

/* swp_mark: allocate bits [s, s + n), count 1 each, held by h */
static void
swp_mark(struct swap_shared *ss, int h, uint64_t s, uint64_t n)
{
	SWP_ASSERT_LOCKED(ss);
	for (uint64_t i = s; i < s + n; i++) {
		VM_ASSERT(!swp_isset(ss, i) && ss->ss_count[i] == 0);
		ss->ss_bitmap[i / 64] |= (uint64_t)1 << (i % 64);
		ss->ss_count[i] = 1;
		swh_set(&ss->ss_holders, h, i);
		ss->ss_hash[i] = 0;		/* content not known */
		if (ss->ss_gen != NULL)
			ss->ss_gen[i + 1] = 0;	/* no value's page */
	}
	ss->ss_used += n;
	ss->ss_hiwater = MAX(ss->ss_hiwater, s + n);
}

/* swp_release: bit i's last reference went: it is free again */
static void
swp_release(struct swap_shared *ss, uint64_t i)
{
	SWP_ASSERT_LOCKED(ss);
	VM_ASSERT(swp_isset(ss, i) && ss->ss_count[i] == 0);
	ss->ss_bitmap[i / 64] &= ~((uint64_t)1 << (i % 64));
	ss->ss_used--;
	for (int t = 0; t < ss->ss_ntier; t++)
		if (i >= ss->ss_tlo[t] && i < ss->ss_thi[t] &&
		    i < ss->ss_cursor[t])
			ss->ss_cursor[t] = i;
}

/* ---------------------------------------------------------------- */
/* the file */

static int
swp_extend(int fd, uint64_t from, uint64_t to)
{
	for (;;) {
		if (fallocate(fd, 0, (off_t)from, (off_t)(to - from)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EFBIG)
			return -ENOSPC;		/* the file system's limit */
		if (errno != EOPNOTSUPP)
			return -errno;
		/* no fallocate (ramfs, some FUSE): sparse */
		return ftruncate(fd, (off_t)to) == 0 ? 0 : -errno;
	}
}

/*
 * swp_grow: make the file at least need bytes long.
 * => ss_grow and ss_lock not held on entry or exit; takes both.
 * => 0, -ENOSPC (disk full), or the file system's error.
 */
static int
swp_grow(struct swap *sw, uint64_t need)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t size, want, cap = ptoa(ss->ss_file_hi - ss->ss_file_lo);
	int error = 0;

	swp_mutex_lock(&ss->ss_grow);
	size = ss->ss_filesize;		/* [g]: we hold ss_grow */
	if (size < need) {
		want = MIN((need + SWAP_GROW - 1) / SWAP_GROW * SWAP_GROW, cap);
		error = swp_extend(sw->sw_fd, size, want);
		if (error == -ENOSPC && want > need) {
			/* no room for a whole step: maybe for this run */
			want = need;
			error = swp_extend(sw->sw_fd, size, want);
		}
		if (error == 0) {
			swp_lock(ss);
			ss->ss_filesize = want;
			swp_unlock(ss);
		}
	}
	(void)pthread_mutex_unlock(&ss->ss_grow);
	return error;
}

/*
 * swp_open_tmp: an unnamed file in directory dir: O_TMPFILE, or where the
 * file system lacks it a mkostemp() file unlinked at once.
 * => the fd, or -errno.
 */
static int
swp_open_tmp(const char *dir)
{
	char tmpl[PATH_MAX];
	int fd, error;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	error = -errno;
	/* EISDIR: a kernel before 3.11 opened dir; the others: no support */
	if (error != -EOPNOTSUPP && error != -EISDIR && error != -EINVAL)
		return error;
	if (snprintf(tmpl, sizeof(tmpl), "%s/upvm-swap.XXXXXX", dir) >=
	    (int)sizeof(tmpl))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(tmpl, O_CLOEXEC)) < 0)
		return -errno;
	if (unlink(tmpl) != 0) {
		error = -errno;
		close(fd);
		return error;
	}
	return fd;
}

/*
 * swp_open: create the file at sf_path (a directory, or a path ending in
 * '/': unnamed in it; else, unless dironly, a new file of that name,
 * unlinked at once).  `upvm run` ends a directory's path with '/': if
 * the directory is removed while the program runs, the programs it starts
 * say so instead of making a file of the directory's name.
 * => 0 with sw_fd and sw_direct set, or -errno (not logged).
 */
static int
swp_open(struct swap_file *sf, bool nodirect, bool dironly)
{
	struct swap *sw = &sf->sf_swap;
	size_t len = strlen(sf->sf_path);
	struct stat st;
	int fd;

	if (dironly || (len > 0 && sf->sf_path[len - 1] == '/')) {
		/* $TMPDIR or /var/tmp, or a directory: never a file of that
		   name */
		fd = swp_open_tmp(sf->sf_path);
	} else if (stat(sf->sf_path, &st) == 0) {
		/* a file: never overwrite what the user has */
		fd = S_ISDIR(st.st_mode) ? swp_open_tmp(sf->sf_path) : -EEXIST;
	} else {
		/* absent (or unreadable: open() says why) */
		fd = open(sf->sf_path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
		    0600);
		if (fd < 0) {
			fd = -errno;
		} else if (unlink(sf->sf_path) != 0) {
			int error = -errno;

			close(fd);
			fd = error;
		}
	}
	if (fd < 0)
		return fd;
	sw->sw_fd = fd;
	sw->sw_direct = !nodirect && ringq_try_direct(fd);
	return 0;
}

/* ---------------------------------------------------------------- */
/* creation */

/*
 * swap_create: see swap.h.  The struct swap and the path come from
 * kmem_alloc(), the shared state from a raw MAP_SHARED mmap: nothing from
 * malloc, which upvm may be managing for the application.
 * => 0, or -errno with one log line.
 */
/* swp_tiers_init: the shared state's copy of the tiers, preferred first */
static void
swp_tiers_init(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;
	bool remote_first = sw->sw_remote != NULL && sw->sw_rlo == 0;

	ss->ss_file_lo = sw->sw_flo;
	ss->ss_file_hi = sw->sw_fhi;
	ss->ss_ntier = 0;
	for (int k = 0; k < 2; k++) {
		bool remote = (k == 0) == remote_first;
		uint64_t lo = remote ? sw->sw_rlo : sw->sw_flo;
		uint64_t hi = remote ? sw->sw_rhi : sw->sw_fhi;

		if (hi > lo) {
			ss->ss_tlo[ss->ss_ntier] = lo;
			ss->ss_thi[ss->ss_ntier] = hi;
			ss->ss_cursor[ss->ss_ntier] = lo;
			ss->ss_ntier++;
		}
	}
}

int
swap_create(const struct swap_config *sc, struct swap **out)
{
	struct swap_file *sf;
	struct swap *sw;
	const char *path;
	uint64_t max, nslots, total;
	size_t len;
	bool file;
	int error;

	max = sc->sc_max != 0 ? sc->sc_max : SWAP_DEFAULT_MAX;
	nslots = max / PAGE_SIZE;
	if (nslots < 1) {
		upvm_log(LOG_ERR, "swap: a cap of %llu bytes holds no page; "
		    "set UPVM_SWAP_MAX to %zu bytes or more",
		    (unsigned long long)max, PAGE_SIZE);
		return -EINVAL;
	}
	if ((path = sc->sc_path) == NULL &&
	    ((path = getenv("TMPDIR")) == NULL || *path == '\0'))
		path = SWAP_DEFAULT_DIR;

	len = sizeof(*sf) + strlen(path) + 1;
	if ((sf = kmem_alloc(len)) == NULL) {
		upvm_log(LOG_ERR, "swap: out of memory for the swap in %s",
		    path);
		return -ENOMEM;
	}
	sw = &sf->sf_swap;
	sf->sf_len = len;
	memcpy(sf->sf_path, path, strlen(path) + 1);
	(void)snprintf(sw->sw_where, sizeof(sw->sw_where), "%s", path);
	for (int i = 0; i < 2; i++) {
		atomic_init(&sw->sw_fail[i], 0);
		atomic_init(&sw->sw_gate[i], -1);
		sw->sw_gatefd[i] = -1;
	}
	pthread_mutex_init(&sw->sw_bounce_lock, NULL);
	sw->sw_nbounce = 0;
	/* a random key, so that no fixed content collides on purpose */
	if (getrandom(&sw->sw_hashkey, sizeof(sw->sw_hashkey),
	    GRND_NONBLOCK) != (ssize_t)sizeof(sw->sw_hashkey))
		sw->sw_hashkey = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^
		    (uint64_t)getpid();

	sw->sw_fd = -1;
	file = sc->sc_remote == NULL || sc->sc_file_tier;
	/* the tiers' bits: one cap each; two tiers have a bit between them
	   that is never allocated, so no run of slots (and no read of
	   neighbouring slots) spans both */
	if (sc->sc_remote == NULL) {
		sw->sw_flo = 0, sw->sw_fhi = nslots;
	} else if (!file) {
		sw->sw_rlo = 0, sw->sw_rhi = nslots;
	} else if (sc->sc_remote_first) {
		sw->sw_rlo = 0, sw->sw_rhi = nslots;
		sw->sw_flo = nslots + 1, sw->sw_fhi = 2 * nslots + 1;
	} else {
		sw->sw_flo = 0, sw->sw_fhi = nslots;
		sw->sw_rlo = nslots + 1, sw->sw_rhi = 2 * nslots + 1;
	}
	total = MAX(sw->sw_fhi, sw->sw_rhi);
	sw->sw_maxslots = total;
	if ((sc->sc_encrypt || sc->sc_remote != NULL) &&
	    (error = seal_create(&sw->sw_seal)) != 0)
		goto fail;
	if (sc->sc_remote != NULL &&
	    (error = remote_create(sc->sc_remote, sw->sw_seal,
	    &sw->sw_remote)) != 0)
		goto fail_seal;
	if (file && (error = swp_open(sf, sc->sc_nodirect,
	    sc->sc_path == NULL)) != 0) {
		upvm_log(LOG_ERR, "swap: cannot create a swap file in %s: %s; "
		    "pass a writable directory or a new file name (UPVM_SWAP)",
		    path, strerror(-error));
		goto fail_remote;
	}
	if (sw->sw_remote != NULL)
		(void)snprintf(sw->sw_where, sizeof(sw->sw_where), "%s%s%s",
		    !file ? "" : sc->sc_remote_first ? "" : path,
		    !file ? remote_describe(sw->sw_remote) : sc->sc_remote_first
		    ? remote_describe(sw->sw_remote) : ", then ",
		    !file ? "" : sc->sc_remote_first ? ", then a file" :
		    remote_describe(sw->sw_remote));
	if ((error = swp_shared_create(total, sw->sw_seal != NULL,
	    sw->sw_seal != NULL && file, &sw->sw_shared)) != 0)
		goto fail_file;
	swp_tiers_init(sw);
	sw->sw_child = SWH_NONE;
	swp_claim(sw, SWH_NONE, 0);
	/* pager offsets are slot * PAGE_SIZE: the last slot ends here */
	pager_init(&sw->sw_pager, &swap_pager_ops, ptoa(total + 1));
	*out = sw;
	return 0;
fail_file:
	if (sw->sw_fd >= 0)
		close(sw->sw_fd);
fail_remote:
	remote_destroy(sw->sw_remote);
fail_seal:
	seal_destroy(sw->sw_seal);
fail:
	kmem_free(sf, len);
	return error;
}

/* swp_destroy: pgo_destroy, after the last pager_unref() */
static void
swp_destroy(struct pager *pgr)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);
	struct swap_file *sf = swap_file_of(sw);
	int h;

	/* what this process still holds it never reads again */
	swp_lock(sw->sw_shared);
	if ((h = swp_holder(sw)) != SWH_NONE)
		(void)swp_give_back(sw, h);
	swp_unlock(sw->sw_shared);
	if (sw->sw_fd >= 0)
		close(sw->sw_fd);
	remote_destroy(sw->sw_remote);
	seal_destroy(sw->sw_seal);
	for (int i = 0; i < 2; i++)
		if (sw->sw_gatefd[i] >= 0)
			close(sw->sw_gatefd[i]);
	while (sw->sw_nbounce > 0)
		kmem_free(sw->sw_bounce[--sw->sw_nbounce],
		    ptoa((size_t)SWAP_BOUNCE_PAGES));
	pthread_mutex_destroy(&sw->sw_bounce_lock);
	(void)raw_munmap(sw->sw_shared, sw->sw_shared->ss_maplen);
	kmem_free(sf, sf->sf_len);
}

uint64_t
swap_cpu_ns(struct swap *sw)
{
	return sw->sw_remote != NULL ? remote_cpu_ns(sw->sw_remote) : 0;
}

bool
swap_fork_pend(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;

	VM_ASSERT(sw->sw_child == SWH_NONE);
	swp_lock(ss);
	sw->sw_child = swh_pend(&ss->ss_holders, &sw->sw_child_nonce);
	swp_unlock(ss);
	return sw->sw_child != SWH_NONE;
}

uint64_t
swap_fork_parent(struct swap *sw)
{
	int h = sw->sw_child;

	sw->sw_child = SWH_NONE;
	return h == SWH_NONE ? 0 :
	    sw->sw_child_nonce * SWAP_HOLDERS + (uint64_t)h;
}

bool
swap_fork_child(struct swap *sw)
{
	int h = sw->sw_child;

	if (sw->sw_remote != NULL)
		remote_fork_child(sw->sw_remote);
	sw->sw_holder = SWH_NONE;	/* the parent's until claimed */
	sw->sw_child = SWH_NONE;
	swp_claim(sw, h, sw->sw_child_nonce);
	return h != SWH_NONE && sw->sw_holder == h;
}

void
swap_fork_done(struct swap *sw, uint64_t token, pid_t pid)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t start = 0, pidns = 0, slots = 0;
	uint64_t nonce = token / SWAP_HOLDERS;
	int h = (int)(token % SWAP_HOLDERS);
	bool reapable = false, failed = pid <= 0;

	if (token == 0)
		return;
	if (!failed)
		reapable = swh_child(pid, &start, &pidns);
	swp_lock(ss);
	if (failed && swh_pending(&ss->ss_holders, h, nonce))
		slots = swp_give_back(sw, h);
	else if (!failed)
		(void)swh_adopt(&ss->ss_holders, h, nonce, pid, start, pidns,
		    reapable);
	swp_unlock(ss);
	if (failed)
		upvm_log(LOG_DEBUG, "swap: fork failed (%s): gave back the "
		    "%llu slot references taken for the child",
		    strerror(-pid), (unsigned long long)slots);
}

/*
 * swap_destroy: drop the creator's reference (pager_unref); the last
 * reference closes the file (it has no name: see struct swap_file) and
 * unmaps this process's view of the shared state.
 */
void
swap_destroy(struct swap *sw)
{
	if (sw != NULL)
		pager_unref(&sw->sw_pager);
}

/* ---------------------------------------------------------------- */
/* slots */

static bool
swp_range_ok(const struct swap *sw, uint64_t slot, int n)
{
	return n > 0 && slot >= 1 && slot <= sw->sw_maxslots &&
	    (uint64_t)n <= sw->sw_maxslots - slot + 1;
}

/*
 * swp_reap_due: another process is recorded as a holder, and no
 * allocation asked for a reap in the last SWAP_REAP_NS: this one does (it
 * sets the time).
 * => ss_lock held
 */
static bool
swp_reap_due(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;
	struct timespec ts;
	uint64_t now;

	SWP_ASSERT_LOCKED(ss);
	if (ss->ss_holders.sh_nlive - (swp_holder(sw) != SWH_NONE) <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (ss->ss_reaped_ns != 0 && now - ss->ss_reaped_ns < SWAP_REAP_NS)
		return false;
	ss->ss_reaped_ns = now;
	return true;
}

/*
 * swp_alloc: swap_alloc, or with !may_grow swap_alloc_now (swap.h).
 * => takes and drops ss_lock; when the file must grow, then ss_grow.
 * => 0, -ENOSPC (cap or disk full: nothing allocated, nothing logged,
 *    the caller decides), -EINVAL (n <= 0), -EAGAIN (the file would
 *    have to grow, !may_grow: nothing allocated), or the file system's
 *    error while growing the file (-EIO).
 */
static int
swp_alloc(struct swap *sw, int n, bool may_grow, uint64_t *slotp)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t s = SWAP_NONE, cur, lo, hi, end = 0;
	bool grow = false, reap, reaped = false;
	int error;

	if (n <= 0)
		return -EINVAL;
again:
	swp_lock(ss);
	/* the first tier with room; a run never leaves its tier */
	for (int t = 0; t < ss->ss_ntier && s == SWAP_NONE; t++) {
		lo = ss->ss_tlo[t];
		hi = ss->ss_thi[t];
		if ((uint64_t)n > hi - lo)
			continue;
		cur = ss->ss_cursor[t];
		s = swp_find(ss->ss_bitmap, cur, hi, (uint64_t)n);
		if (s == SWAP_NONE)	/* wrap: runs starting before it */
			s = swp_find(ss->ss_bitmap, lo, MIN(cur +
			    (uint64_t)n - 1, hi), (uint64_t)n);
		if (s != SWAP_NONE)
			ss->ss_cursor[t] = s + (uint64_t)n;
	}
	if (s == SWAP_NONE) {
		/* not for swap_alloc_now: its caller may hold the map */
		reap = may_grow && !reaped && swp_reap_due(sw);
		swp_unlock(ss);
		/* full: maybe of references that gone processes held */
		if (reap && swap_reap(sw) > 0) {
			reaped = true;
			goto again;
		}
		return -ENOSPC;
	}
	swp_mark(ss, swp_holder(sw), s, (uint64_t)n);
	if (s >= ss->ss_file_lo && s < ss->ss_file_hi) {
		end = ptoa(s + (uint64_t)n - ss->ss_file_lo);
		if ((grow = end > ss->ss_filesize))
			ss->ss_growing++;
	}
	reap = grow && may_grow && swp_reap_due(sw);
	swp_unlock(ss);
	if (!grow) {
		*slotp = s + 1;
		return 0;
	}
	/* before the file grows: the slots of gone processes are room, for
	   the allocations after this one */
	if (reap)
		(void)swap_reap(sw);

	error = may_grow ? swp_grow(sw, end) : -EAGAIN;
	swp_lock(ss);
	ss->ss_growing--;
	if (error != 0) {
		/* give the run back: nothing allocated */
		for (uint64_t i = s; i < s + (uint64_t)n; i++) {
			(void)swh_clear(&ss->ss_holders, swp_holder(sw), i);
			ss->ss_count[i] = 0;
			swp_release(ss, i);
		}
	}
	swp_unlock(ss);
	if (error == 0)
		*slotp = s + 1;
	return error;
}

int
swap_alloc(struct swap *sw, int n, uint64_t *slotp)
{
	return swp_alloc(sw, n, true, slotp);
}

int
swap_alloc_now(struct swap *sw, int n, uint64_t *slotp)
{
	return swp_alloc(sw, n, false, slotp);
}

/*
 * swap_ref: one more reference on each of slots [slot, slot + n).
 * => takes and drops ss_lock; the slots must be allocated.
 */
void
swap_ref(struct swap *sw, uint64_t slot, int n)
{
	struct swap_shared *ss = sw->sw_shared;

	VM_ASSERT(swp_range_ok(sw, slot, n));
	swp_lock(ss);
	for (uint64_t i = slot - 1; i < slot - 1 + (uint64_t)n; i++) {
		VM_ASSERT(ss->ss_count[i] > 0 &&
		    ss->ss_count[i] < UINT32_MAX);
		/* counted before recorded (swaphold.h) */
		ss->ss_count[i]++;
		swh_set(&ss->ss_holders, sw->sw_child, i);
	}
	swp_unlock(ss);
}

/*
 * swp_forget_value: slot's last reference went; when no other slot of
 * its remote value (remote.h) holds its page of it any more, the value
 * goes too (its key has the generation, so a later write of the slots is
 * never the one deleted).  A slot handed out again holds generation 0
 * until written (swp_mark), so it keeps no old value alive.
 * => ss_lock held
 */
static void
swp_forget_value(struct swap *sw, uint64_t slot)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t vslot, vgen;

	SWP_ASSERT_LOCKED(ss);
	if (ss->ss_gen[slot] == 0)
		return;				/* never written */
	remote_value_of(slot, ss->ss_gen[slot], &vslot, &vgen);
	for (uint64_t t = vslot; t < vslot + REMOTE_VPAGES; t++)
		if (t != slot && swp_range_ok(sw, t, 1) &&
		    ss->ss_count[t - 1] > 0 &&
		    ss->ss_gen[t] == vgen + (t - vslot))
			return;
	remote_forget(sw->sw_remote, vslot, vgen);
}

/* swp_unref: one reference less on slot index i.  => ss_lock held */
static void
swp_unref(struct swap *sw, uint64_t i)
{
	struct swap_shared *ss = sw->sw_shared;

	SWP_ASSERT_LOCKED(ss);
	VM_ASSERT(ss->ss_count[i] > 0);
	if (--ss->ss_count[i] != 0)
		return;
	if (swp_is_remote(sw, i + 1))
		swp_forget_value(sw, i + 1);
	swp_release(ss, i);
}

/*
 * swap_free: one reference less on each of slots [slot, slot + n); a slot
 * whose last reference goes is free (its data is not erased).
 * => takes and drops ss_lock; freeing a free slot is a VM_ASSERT.
 */
void
swap_free(struct swap *sw, uint64_t slot, int n)
{
	struct swap_shared *ss = sw->sw_shared;
	int h;

	VM_ASSERT(swp_range_ok(sw, slot, n));
	swp_lock(ss);
	h = swp_holder(sw);
	for (uint64_t i = slot - 1; i < slot - 1 + (uint64_t)n; i++) {
		/* a reference the caller holds, recorded or not (a parent's
		   for a child whose fork failed is nobody's) */
		(void)swh_clear(&ss->ss_holders, h, i);
		swp_unref(sw, i);
	}
	swp_unlock(ss);
}

void
swap_hold(struct swap *sw, uint64_t slot, int n)
{
	struct swap_shared *ss = sw->sw_shared;
	int h;

	VM_ASSERT(swp_range_ok(sw, slot, n));
	swp_lock(ss);
	h = swp_holder(sw);
	for (uint64_t i = slot - 1; i < slot - 1 + (uint64_t)n; i++) {
		VM_ASSERT(ss->ss_count[i] > 0);
		swh_set(&ss->ss_holders, h, i);
	}
	swp_unlock(ss);
}

static uint64_t
swp_give_back(struct swap *sw, int h)
{
	struct swap_holders *sh = &sw->sw_shared->ss_holders;
	uint64_t i, n = 0;

	SWP_ASSERT_LOCKED(sw->sw_shared);
	for (i = swh_next(sh, h, 0); i != UINT64_MAX;
	    i = swh_next(sh, h, i + 1)) {
		(void)swh_clear(sh, h, i);
		swp_unref(sw, i);
		n++;
	}
	swh_free(sh, h);
	return n;
}

int
swap_reap(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;
	struct swap_holders *sh = &ss->ss_holders;
	struct swap_holder seen[SWAP_HOLDERS];
	bool gone[SWAP_HOLDERS];
	uint64_t slots, start, pidns;
	int self, reaped = 0;
	pid_t pid;

	/* a reaper that /proc does not show as itself judges nobody */
	if (!swh_self(&pid, &start, &pidns))
		return 0;
	swp_lock(ss);
	self = swp_holder(sw);
	memcpy(seen, sh->sh_tab, sizeof(seen));
	swp_unlock(ss);
	for (int h = 0; h < SWAP_HOLDERS; h++)
		gone[h] = h != self && seen[h].sh_state == SWH_LIVE &&
		    swh_gone(sh, &seen[h], pidns);
	for (int h = 0; h < SWAP_HOLDERS; h++) {
		if (!gone[h])
			continue;
		swp_lock(ss);
		/* not reaped by another process meanwhile, nor reused */
		if (sh->sh_tab[h].sh_state == SWH_LIVE &&
		    sh->sh_tab[h].sh_pid == seen[h].sh_pid &&
		    sh->sh_tab[h].sh_start == seen[h].sh_start) {
			slots = swp_give_back(sw, h);
			reaped++;
		} else {
			slots = UINT64_MAX;
		}
		swp_unlock(ss);
		if (slots != UINT64_MAX)
			upvm_log(LOG_INFO, "swap: gave back %llu slot "
			    "references of process %d, gone without "
			    "upvm_fini", (unsigned long long)slots,
			    (int)seen[h].sh_pid);
	}
	return reaped;
}

/* swap_count: the references on slot; 0 if free or outside the swap */
unsigned
swap_count(struct swap *sw, uint64_t slot)
{
	struct swap_shared *ss = sw->sw_shared;
	unsigned count;

	if (!swp_range_ok(sw, slot, 1))
		return 0;
	swp_lock(ss);
	count = ss->ss_count[slot - 1];
	swp_unlock(ss);
	return count;
}

bool
swap_own_run(struct swap *sw, uint64_t slot, int n)
{
	struct swap_shared *ss = sw->sw_shared;
	bool own = true;

	if (!swp_range_ok(sw, slot, n))
		return false;
	swp_lock(ss);
	for (uint64_t i = slot - 1; own && i < slot - 1 + (uint64_t)n; i++)
		own = ss->ss_count[i] == 1 && !swp_is_remote(sw, i + 1);
	swp_unlock(ss);
	return own;
}

void
swap_set_hash(struct swap *sw, uint64_t slot, uint64_t hash)
{
	VM_ASSERT(swp_range_ok(sw, slot, 1));
	sw->sw_shared->ss_hash[slot - 1] = hash;
}

uint64_t
swap_hash(struct swap *sw, uint64_t slot)
{
	VM_ASSERT(swp_range_ok(sw, slot, 1));
	return sw->sw_shared->ss_hash[slot - 1];
}

/*
 * swp_forget_hash: slots [slot, slot + n) are being written: their
 * hashes are not the content's any more (pager.h).  A hash is set only
 * while the slot's content is stable (pager_remember), so a slot's store
 * and its hash never race.
 */
static void
swp_forget_hash(struct swap *sw, uint64_t slot, int n)
{
	if (!swp_range_ok(sw, slot, n))
		return;
	memset(&sw->sw_shared->ss_hash[slot - 1], 0, sizeof(uint64_t) *
	    (size_t)n);
}

uint64_t
swap_used(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t used;

	swp_lock(ss);
	used = ss->ss_used;
	swp_unlock(ss);
	return used;
}

/* ---------------------------------------------------------------- */
/* I/O through rings */

/*
 * swp_queue: queue the transfer of len bytes at file offset off, with the
 * cache dropped behind it when the file is buffered.
 */
static int
swp_queue(struct swap *sw, struct ring *ring, bool write, void *buf,
    size_t len, uint64_t off, uint64_t tag)
{
	if (pager_fail_next(&sw->sw_fail[write]))
		return -EIO;
	ring_set_gate(ring, atomic_load(&sw->sw_gate[write]));
	if (write && sw->sw_direct)
		return ring_write(ring, sw->sw_fd, buf, len, off, tag);
	if (write)
		return ring_write_nocache(ring, sw->sw_fd, buf, len, off, tag);
	if (sw->sw_direct)
		return ring_read(ring, sw->sw_fd, buf, len, off, tag);
	return ring_read_nocache(ring, sw->sw_fd, buf, len, off, tag);
}

/*
 * swap_read / swap_write: see swap.h.  buf is page aligned (O_DIRECT).
 * The ring is the caller's; registering sw_fd and the buffers on it
 * (ring_register_file / ring_register_buffers) saves work per I/O.
 * => no lock; 0 queued, -EBUSY (ring full), -EINVAL.
 */
int
swap_inject_gate(struct swap *sw, bool wr, bool hold)
{
	uint64_t v = 1;
	int fd = sw->sw_gatefd[wr];

	if (fd < 0 && (fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	sw->sw_gatefd[wr] = fd;
	if (hold) {
		(void)!read(fd, &v, sizeof(v));		/* closed */
		atomic_store(&sw->sw_gate[wr], fd);
	} else {
		atomic_store(&sw->sw_gate[wr], -1);
		(void)!write(fd, &v, sizeof(v));	/* open */
	}
	return 0;
}

void
swap_inject_failure(struct swap *sw, bool write, int nth)
{
	atomic_store(&sw->sw_fail[write], nth);
}

int
swap_read(struct swap *sw, struct ring *ring, uint64_t slot, void *buf,
    int n, uint64_t tag)
{
	VM_ASSERT(swp_range_ok(sw, slot, n) && page_aligned(buf));
	return swp_queue(sw, ring, false, buf, ptoa((size_t)n),
	    swp_foff(sw, slot), tag);
}

int
swap_write(struct swap *sw, struct ring *ring, uint64_t slot,
    const void *buf, int n, uint64_t tag)
{
	VM_ASSERT(swp_range_ok(sw, slot, n) && page_aligned(buf));
	swp_forget_hash(sw, slot, n);
	return swp_queue(sw, ring, true, (void *)(uintptr_t)buf,
	    ptoa((size_t)n), swp_foff(sw, slot), tag);
}

/*
 * swp_sync: the whole transfer on ring, waited for; a short transfer is
 * continued from where it stopped.
 * => the ring has nothing in flight on entry (its completions would be
 *    reaped here), and nothing on return.
 * => 0, the I/O's -errno, or -EIO for a transfer that made no progress
 *    (a read past the end of the file).
 */
static int
swp_sync(struct swap *sw, struct ring *ring, bool write, void *buf,
    uint64_t slot, int n)
{
	struct ring_cqe cqe;
	uint64_t off = swp_foff(sw, slot);
	size_t len = ptoa((size_t)n), done = 0;
	int error;

	VM_ASSERT(swp_range_ok(sw, slot, n) && page_aligned(buf));
	VM_ASSERT(ring_inflight(ring) == 0);
	while (done < len) {
		error = swp_queue(sw, ring, write, (char *)buf + done,
		    len - done, off + done, SWAP_SYNC_TAG);
		if (error != 0)
			return error;
		while ((error = ring_reap(ring, &cqe, 1, true)) == -EINTR)
			continue;
		if (error <= 0)		/* 0: the I/O vanished */
			return error < 0 ? error : -EIO;
		VM_ASSERT(cqe.rc_tag == SWAP_SYNC_TAG);
		if (cqe.rc_res < 0)
			return cqe.rc_res;
		if (cqe.rc_res == 0)
			return -EIO;
		done += (size_t)cqe.rc_res;
	}
	return 0;
}

int
swap_read_sync(struct swap *sw, struct ring *ring, uint64_t slot, void *buf,
    int n)
{
	return swp_sync(sw, ring, false, buf, slot, n);
}

int
swap_write_sync(struct swap *sw, struct ring *ring, uint64_t slot,
    const void *buf, int n)
{
	swp_forget_hash(sw, slot, n);
	return swp_sync(sw, ring, true, (void *)(uintptr_t)buf, slot, n);
}

/* ---------------------------------------------------------------- */
/* the "swap" pager: pager_ops over ring queues (ringq.h) */

/* swp_qcreate: a ring queue with the swap file as its fixed file */
static int
swp_qcreate(struct pager *pgr, unsigned depth, struct pager_queue **out)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);
	int error;

	if ((error = ringq_create(pgr, depth, out)) == 0)
		(void)ring_register_file(ringq_ring(*out), sw->sw_fd);
	return error;
}

/* swp_req_queue: queue the rest of req's transfer on q's ring */
static int
swp_req_queue(struct swap *sw, struct pager_queue *q, struct pager_req *req,
    bool write)
{
	size_t len = ptoa((size_t)req->pr_npages);
	uint64_t off;

	char *buf = write && req->pr_priv != NULL ? req->pr_priv :
	    req->pr_buf;

	off = swp_foff(sw, atop(req->pr_off)) + req->pr_xfer;
	return swp_queue(sw, ringq_ring(q), write, buf + req->pr_xfer,
	    len - req->pr_xfer, off, ringq_tag(req, write));
}

/*
 * swp_pio: pread/pwrite all of len bytes at off (no queue: tests, tools).
 * => 0, -errno, or -EIO when a read hits the end of the file.
 */
static int
swp_pio(struct swap *sw, bool write, char *buf, size_t len, uint64_t off)
{
	size_t total = len;
	ssize_t done;

	while (len > 0) {
		done = write ? sys_pwrite(sw->sw_fd, buf, len, (off_t)off) :
		    sys_pread(sw->sw_fd, buf, len, (off_t)off);
		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return -errno;
		if (done == 0)
			return -EIO;
		buf += done;
		len -= (size_t)done;
		off += (uint64_t)done;
	}
	if (!sw->sw_direct)
		ringq_dropcache(sw->sw_fd, off - total, total);
	return 0;
}

/* swp_pgo_remember: the slots at off hold the n pages at buf: their hashes */
static void
swp_pgo_remember(struct pager *pgr, voff_t off, const void *buf, int n)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);

	for (int i = 0; i < n; i++)
		swap_set_hash(sw, atop(off) + (uint64_t)i, page_hash(
		    (const char *)buf + ptoa((size_t)i), sw->sw_hashkey));
}

/* swp_bounce_get: a bounce buffer for len bytes (one kept, if it fits) */
static char *
swp_bounce_get(struct swap *sw, size_t len)
{
	void *b = NULL;

	if (len > ptoa((size_t)SWAP_BOUNCE_PAGES))
		return kmem_alloc(len);
	pthread_mutex_lock(&sw->sw_bounce_lock);
	if (sw->sw_nbounce > 0)
		b = sw->sw_bounce[--sw->sw_nbounce];
	pthread_mutex_unlock(&sw->sw_bounce_lock);
	return b != NULL ? b : kmem_alloc(ptoa((size_t)SWAP_BOUNCE_PAGES));
}

/* swp_bounce_put: swp_bounce_get's buffer back (kept, or freed) */
static void
swp_bounce_put(struct swap *sw, void *b, size_t len)
{
	if (len > ptoa((size_t)SWAP_BOUNCE_PAGES)) {
		kmem_free(b, len);
		return;
	}
	pthread_mutex_lock(&sw->sw_bounce_lock);
	if (sw->sw_nbounce < SWAP_BOUNCE_KEEP) {
		sw->sw_bounce[sw->sw_nbounce++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&sw->sw_bounce_lock);
	if (b != NULL)
		kmem_free(b, ptoa((size_t)SWAP_BOUNCE_PAGES));
}

/*
 * swp_seal_out: a write of a sealed swap: fresh generations for its slots
 * (the shared counter: never one twice, fork children included) and, for
 * the file, its pages sealed into a bounce buffer (pr_priv), their tags
 * kept by slot.  The generations come in runs from a multiple of
 * REMOTE_VPAGES, a run cut every REMOTE_VPAGES pages and where a group of
 * REMOTE_GROUP slots ends: a run is one value of the remote store
 * (remote.h), which its workers seal themselves; the file only needs
 * them unique.
 * => 0, or -errno (nothing to free).
 */
static int
swp_seal_out(struct swap *sw, struct pager_req *req)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t slot = atop(req->pr_off), g = 0, s;
	size_t len = ptoa((size_t)req->pr_npages);
	char *b;
	int error;

	for (int i = 0, run = 0; i < req->pr_npages; i++, run++) {
		s = slot + (uint64_t)i;
		if (i == 0 || run == REMOTE_VPAGES ||
		    remote_group(s) != remote_group(s - 1)) {
			g = atomic_fetch_add(&ss->ss_gen_next, REMOTE_VPAGES);
			run = 0;
		}
		ss->ss_gen[s] = g + (uint64_t)run;
	}
	if (swp_is_remote(sw, slot))
		return 0;
	if ((b = swp_bounce_get(sw, len)) == NULL)
		return -ENOMEM;
	for (int i = 0; i < req->pr_npages; i++) {
		s = slot + (uint64_t)i;
		if ((error = seal_page(sw->sw_seal, s, ss->ss_gen[s],
		    (char *)req->pr_buf + ptoa((size_t)i), b +
		    ptoa((size_t)i), ss->ss_tag + SEAL_TAG * s)) != 0) {
			swp_bounce_put(sw, b, len);
			return error;
		}
	}
	req->pr_priv = b;
	return 0;
}

/* swp_seal_done: the write's bounce buffer goes */
static void
swp_seal_done(struct swap *sw, struct pager_req *req)
{
	if (req->pr_priv != NULL)
		swp_bounce_put(sw, req->pr_priv, ptoa((size_t)req->pr_npages));
	req->pr_priv = NULL;
}

/*
 * swp_seal_in: open the pages a read of a sealed file brought (in place).
 * => 0, or -EBADMSG with pr_xfer the pages opened before the first that
 *    failed (altered on disk, or not the slot's data) and pr_lost 1.
 */
static int
swp_seal_in(struct swap *sw, struct pager_req *req)
{
	struct swap_shared *ss = sw->sw_shared;
	uint64_t s = atop(req->pr_off);
	char *p;

	for (int i = 0; i < req->pr_npages; i++, s++) {
		p = (char *)req->pr_buf + ptoa((size_t)i);
		if (seal_open(sw->sw_seal, s, ss->ss_gen[s], p, p,
		    ss->ss_tag + SEAL_TAG * s) != 0) {
			req->pr_xfer = ptoa((size_t)i);
			req->pr_lost = 1;
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * swp_finish: the end of a transfer that did not fail: open what a
 * sealed file read, remember what was read; free a write's bounce.
 * => req's result.
 */
static int
swp_finish(struct swap *sw, struct pager_req *req, bool write)
{
	if (write) {
		swp_seal_done(sw, req);
		return req->pr_error;
	}
	if (sw->sw_seal != NULL && !swp_is_remote(sw, atop(req->pr_off))) {
		if (req->pr_error == 0)
			req->pr_error = swp_seal_in(sw, req);
		else if (req->pr_lost == 0)
			req->pr_xfer = 0;	/* read, but not opened */
	}
	if (req->pr_error == 0 && (req->pr_flags & PGO_REMEMBER))
		swp_pgo_remember(&sw->sw_pager, req->pr_off, req->pr_buf,
		    req->pr_npages);
	return req->pr_error;
}

/*
 * swp_io: pgo_get / pgo_put.  Pager offsets are slot * PAGE_SIZE (slot
 * >= 1: offset 0 is "no slot" and is refused), so the file offset is
 * pr_off - PAGE_SIZE.  With a queue the transfer is queued and submitted
 * at once (-EINPROGRESS); without, done with pread/pwrite.  A remote
 * swap hands the transfer to the store's workers (remote_io).
 * => no lock; -EINVAL (offset 0), -EIO (swap_inject_failure), or the
 *    queueing's -errno, with nothing in flight.
 */
static int
swp_io(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    bool write)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);
	int error;

	if (req->pr_off < PAGE_SIZE)
		return -EINVAL;
	VM_ASSERT(page_aligned(req->pr_buf));
	if (write)			/* the slots' old content goes */
		swp_forget_hash(sw, atop(req->pr_off), req->pr_npages);
	if (q == NULL && pager_fail_next(&sw->sw_fail[write]))
		return req->pr_error = -EIO;
	if (write && sw->sw_seal != NULL &&
	    (error = swp_seal_out(sw, req)) != 0)
		return req->pr_error = error;
	if (swp_is_remote(sw, atop(req->pr_off))) {
		if (q != NULL && pager_fail_next(&sw->sw_fail[write]))
			return req->pr_error = -EIO;
		error = remote_io(sw->sw_remote, q != NULL ? ringq_ring(q) :
		    NULL, req, write, sw->sw_shared->ss_gen);
		if (error == -EINPROGRESS || error == -EBUSY)
			return error;
		req->pr_error = error;
		return swp_finish(sw, req, write);
	}
	if (q == NULL) {
		req->pr_error = swp_pio(sw, write, write && req->pr_priv !=
		    NULL ? req->pr_priv : req->pr_buf,
		    ptoa((size_t)req->pr_npages),
		    swp_foff(sw, atop(req->pr_off)));
		return swp_finish(sw, req, write);
	}
	if ((error = swp_req_queue(sw, q, req, write)) != 0) {
		swp_seal_done(sw, req);
		return error;
	}
	return ringq_submit(q, "swap");
}

static int
swp_pgo_get(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return swp_io(pgr, q, req, false);
}

static int
swp_pgo_put(struct pager *pgr, struct pager_queue *q, struct pager_req *req)
{
	return swp_io(pgr, q, req, true);
}

/*
 * swp_qresume: a completion of req's transfer: whole or failed, it is
 * finished; short, the rest is queued again.
 */
static bool
swp_qresume(struct pager *pgr, struct pager_queue *q, struct pager_req *req,
    bool write, int res)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);
	int error;

	if (swp_is_remote(sw, atop(req->pr_off))) {
		/* the store's workers did the whole transfer */
		if (res < 0)
			req->pr_error = res;
		(void)swp_finish(sw, req, write);
		return true;
	}
	if (res > 0)
		req->pr_xfer += (size_t)res;
	if (res > 0 && req->pr_xfer < ptoa((size_t)req->pr_npages)) {
		if ((error = swp_req_queue(sw, q, req, write)) == 0)
			return false;
		req->pr_error = error;
	} else if (res <= 0) {
		/* 0: a read past the end of the file */
		req->pr_error = res < 0 ? res : -EIO;
	}
	(void)swp_finish(sw, req, write);
	return true;
}

static bool
swp_pgo_unchanged(struct pager *pgr, voff_t off, const void *buf)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);

	return page_hash(buf, sw->sw_hashkey) == swap_hash(sw, atop(off));
}

static bool
swp_pgo_known(struct pager *pgr, voff_t off)
{
	struct swap *sw = container_of(pgr, struct swap, sw_pager);

	return swap_hash(sw, atop(off)) != 0;
}

/*
 * swp_pgo_discard: nothing to do.  Slots belong to anons and are freed by
 * swap_free() when their last reference goes, never by offset range; the
 * file keeps its blocks (it never shrinks).
 */
static int
swp_pgo_discard(struct pager *pgr, voff_t start, voff_t end)
{
	return 0;
}

const struct pager_ops swap_pager_ops = {
	.name = "swap",
	.pgo_get = swp_pgo_get,
	.pgo_put = swp_pgo_put,
	.pgo_qcreate = swp_qcreate,
	.pgo_qfd = ringq_fd,
	.pgo_qcomplete = ringq_complete,
	.pgo_qflush = ringq_flush,
	.pgo_qdestroy = ringq_destroy,
	.pgo_qlisten = ringq_listen,
	.pgo_qheard = ringq_heard,
	.pgo_qunlisten = ringq_unlisten,
	.pgo_qresume = swp_qresume,
	.pgo_discard = swp_pgo_discard,
	.pgo_remember = swp_pgo_remember,
	.pgo_unchanged = swp_pgo_unchanged,
	.pgo_known = swp_pgo_known,
	.pgo_destroy = swp_destroy,
};

/* ---------------------------------------------------------------- */
/* swap_check */

/*
 * swp_check_locked: the invariants of struct swap_shared.
 * => ss_lock held.  => NULL, or what is wrong.
 */
static const char *
swp_check_locked(struct swap_shared *ss, uint64_t *badp)
{
	uint64_t used = 0, top = 0, last;

	SWP_ASSERT_LOCKED(ss);
	if (ss->ss_hiwater > ss->ss_nslots || ss->ss_cursor[0] >
	    ss->ss_nslots || ss->ss_cursor[1] > ss->ss_nslots)
		return "hiwater or cursor past the cap";
	for (uint64_t i = 0; i < ss->ss_hiwater; i++) {
		if (swp_isset(ss, i) != (ss->ss_count[i] > 0)) {
			*badp = i + 1;
			return "bitmap and count disagree at slot";
		}
		if (swp_isset(ss, i)) {
			used++;
			if (i >= ss->ss_file_lo && i < ss->ss_file_hi)
				top = i + 1 - ss->ss_file_lo;
		}
	}
	if (used != ss->ss_used) {
		*badp = used;
		return "ss_used differs from bits set below hiwater";
	}
	last = (ss->ss_nslots - 1) / 64;
	if (ss->ss_nslots % 64 != 0 &&
	    (ss->ss_bitmap[last] >> (ss->ss_nslots % 64)) != 0)
		return "bits set past the cap";
	if (ss->ss_growing == 0 && ptoa(top) > ss->ss_filesize) {
		*badp = top;
		return "allocated slot past the end of the file";
	}
	if (ss->ss_filesize > ptoa(ss->ss_file_hi - ss->ss_file_lo))
		return "file larger than the cap";
	return swh_check(&ss->ss_holders, ss->ss_count, ss->ss_hiwater, badp);
}

/*
 * swap_check: see swap.h.  Scans the slots up to the highest ever
 * allocated, and stats the file.
 * => takes and drops ss_lock.
 */
int
swap_check(struct swap *sw)
{
	struct swap_shared *ss = sw->sw_shared;
	struct stat st;
	uint64_t bad = 0, size;
	const char *what;

	swp_lock(ss);
	what = swp_check_locked(ss, &bad);
	size = ss->ss_filesize;
	swp_unlock(ss);
	if (what == NULL && sw->sw_fd >= 0 && fstat(sw->sw_fd, &st) == 0 &&
	    (uint64_t)st.st_size < size) {
		what = "file shorter than ss_filesize";
		bad = (uint64_t)st.st_size;
	}
	if (what == NULL)
		return 0;
	upvm_log(LOG_ERR, "swap_check: swap in %s: %s (%llu)", sw->sw_where,
	    what, (unsigned long long)bad);
	return -EINVAL;
}
