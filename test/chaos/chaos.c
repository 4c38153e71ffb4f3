/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chaos.c: a model-based random-operations test.  An ordinary program (it
 * knows nothing of upvm, and runs natively too) that performs a seeded
 * random sequence of mmap, munmap (whole, head, tail, middle), mremap
 * (grow, shrink, move, DONTUNMAP), madvise of every kind, mprotect,
 * mlock/mlock2/munlock, fork (the child goes on with a sequence of its own
 * on its copy), loads and stores, and the kernel's own copies into and out
 * of the memory (pipes, pread/pwrite, readv/writev, O_DIRECT), from several
 * threads, and checks every byte it reads against a shadow model.
 *
 * The model.  Memory is cut in 512-byte granules; the shadow holds one
 * 64-bit seed per granule and the granule's 64 words are a function of
 * that seed alone (so a copy moves the seed), 0 meaning zeros.  A granule
 * the program gave to MADV_FREE holds its old data or zeros, all of one
 * page the same way: its seed carries MAYBE until a write pins it.  The
 * shadow and the mapping table live in memory mapped with the raw system
 * call, which no preloaded runtime manages, and fork copies them.
 *
 * Threads own their mappings (each has its own model, no locks on it); a
 * read-write lock held shared by every operation and exclusively by fork
 * makes the child's copy of everyone's memory match everyone's model.  The
 * child runs single-threaded: it verifies everything it inherited, runs
 * its own operations on all of it, verifies again and exits.
 *
 * On a mismatch it prints the seed, the thread, the operation number and
 * the first wrong address with the words expected and found, then the
 * thread's last operations, and exits 1.  A run in which no thread
 * finishes an operation for --stall seconds (default 60) is a hang: a
 * watchdog thread prints the seed, every thread's last operations and
 * what each task of the process waits in (/proc/self/task), and exits 3.  With --threads 1 the same seed
 * replays the same sequence exactly; with more threads each thread's
 * sequence is the same, not their interleaving.
 *
 * usage: chaos [--seed N] [--threads N] [--ops N] [--seconds N]
 *              [--minutes N] [--size MiB] [--dir DIR] [--skip OPS]
 *              [--stall SECONDS] [--quiet] [--trace]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT		1
#endif

#define PG		4096UL
#define GRAN		512UL
#define GPP		(PG / GRAN)		/* granules per page */
#define WPG		(GRAN / 8)		/* words per granule */
#define MAYBE		(1ULL << 63)		/* MADV_FREE: old or zero */
#define MAXTHREADS	16
#define MAXMAPS		12			/* per thread */
#define FILE_PAGES	1024			/* each thread's I/O file */
#define IO_MAX		(64 * 1024UL)		/* a pipe's capacity */
#define HISTORY		16

struct cmap {
	char		*base;		/* NULL: slot free */
	size_t		 len;
	uint64_t	*seed;		/* len / GRAN seeds, raw-mmap'd */
	int		 prot;
	bool		 locked;
	bool		 dontfork;
	bool		 wipeonfork;
	bool		 managed;	/* mapped >= 1 MiB, not populated:
					   upvm manages it (--check-uffd) */
};

struct worker {
	int		 id;
	uint64_t	 rng;
	uint64_t	 op;		/* operations done */
	size_t		 bytes;		/* mapped by this thread */
	size_t		 cap;		/* its share of --size */
	struct cmap	 map[MAXMAPS];
	int		 fd, dfd;	/* its I/O file; the same, O_DIRECT */
	uint64_t	*fseed;		/* the file's model */
	const char	*hist[HISTORY];	/* the last operations, for a report */
	char		 note[HISTORY][96];
	pthread_t	 tid;
};

static struct {
	uint64_t	 seed;
	int		 nthreads;
	uint64_t	 ops;		/* per thread; 0: until the time is up */
	double		 seconds;
	size_t		 size;
	const char	*dir;
	bool		 quiet;
	bool		 trace;		/* every operation on stderr */
	bool		 check_uffd;	/* debugging upvm: after every
					   operation, every mapping of 1 MiB
					   or more is registered */
	unsigned	 skip;		/* 1 << index in ops[]: never */
	bool		 in_child;
	double		 t_end;
	unsigned	 stall;		/* seconds without progress: a hang */
} opt = { .nthreads = 2, .size = 96UL << 20, .seconds = 0, .stall = 60 };

static struct worker	*workers;	/* raw-mmap'd, nthreads of them */
static pthread_rwlock_t	 forklock;
static pthread_mutex_t	 childlock = PTHREAD_MUTEX_INITIALIZER;
static pid_t		 child;		/* [childlock] the fork running */
static atomic_ullong	 verified, nforks, nskipped;
static atomic_bool	 stop;

/* memory no preloaded runtime sees: the raw system calls */
static void *
raw_alloc(size_t len)
{
	void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "chaos: out of memory for the model\n");
		exit(2);
	}
	return p;
}

static void
raw_free(void *p, size_t len)
{
	if (p != NULL)
		syscall(SYS_munmap, p, len);
}

static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t
rnd(struct worker *w)
{
	return mix(w->rng++);
}

static size_t
below(struct worker *w, size_t n)
{
	return n == 0 ? 0 : rnd(w) % n;
}

/* a fresh granule seed: never 0, never MAYBE */
static uint64_t
fresh(struct worker *w)
{
	return (rnd(w) | 1) & ~MAYBE;
}

static uint64_t
gword(uint64_t seed, size_t i)
{
	return mix(seed ^ (i * 0x2545f4914f6cdd1dULL)) | 1;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
note(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	int i = w->op % HISTORY;

	va_start(ap, fmt);
	vsnprintf(w->note[i], sizeof(w->note[i]), fmt, ap);
	va_end(ap);
	w->hist[i] = w->note[i];
	if (opt.trace)
		fprintf(stderr, "[%d%s] %s\n", w->id, opt.in_child ? "c" : "",
		    w->note[i]);
}

static void __attribute__((noreturn))
fail(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fprintf(stderr, "chaos: FAILED seed %" PRIu64 " thread %d op %" PRIu64
	    "%s: ", opt.seed, w->id, w->op, opt.in_child ? " (in a fork child)"
	    : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nchaos: the thread's last operations, oldest first:\n");
	for (uint64_t k = w->op + 1; k <= w->op + HISTORY; k++)
		if (w->hist[k % HISTORY] != NULL)
			fprintf(stderr, "  %s\n", w->hist[k % HISTORY]);
	fprintf(stderr, "chaos: replay: chaos --seed %" PRIu64 " --threads %d"
	    " --ops %" PRIu64 " --size %zu\n", opt.seed, opt.nthreads,
	    w->op + 1, opt.size >> 20);
	funlockfile(stderr);
	_exit(1);
}

/* the kernel's mappings over [a, a + len) and one either side, on
   stderr: what a failed mremap or munmap met */
static void
dump_maps(const void *a, size_t len)
{
	uintptr_t lo = (uintptr_t)a, hi = lo + len, s, e;
	char line[512];
	bool near = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &s, &e) == 2 &&
		    strchr(line, ':') != NULL && line[8] != ':') {
			near = e + PG >= lo && s <= hi + PG;
			if (near)
				fprintf(stderr, "chaos: maps: %s", line);
		} else if (near && strncmp(line, "VmFlags:", 8) == 0) {
			fprintf(stderr, "chaos: maps:   %s", line);
		}
	}
	fclose(f);
}

static void
fill(uint64_t *p, uint64_t seed)
{
	for (size_t i = 0; i < WPG; i++)
		p[i] = seed == 0 ? 0 : gword(seed, i);
}

/* the first word of granule p that does not hold seed, or -1 */
static long
gbad(const uint64_t *p, uint64_t seed)
{
	for (size_t i = 0; i < WPG; i++)
		if (p[i] != (seed == 0 ? 0 : gword(seed, i)))
			return (long)i;
	return -1;
}

static bool
readable(const struct cmap *m)
{
	return m->prot & PROT_READ;
}

static bool
writable(const struct cmap *m)
{
	return m->prot & PROT_WRITE;
}

/* pin: the MADV_FREE'd pages over granules [g, g + n) of a writable
   mapping stop being free.  The kernel may drop such a page until it is
   written (MADV_PAGEOUT does at once), so one word of it is rewritten
   with what it holds by a compare-and-swap: a swap that succeeds wrote
   the old page, which stays; one that fails found the page dropped, and
   the page is zeros for good. */
static void
pin(struct worker *w, struct cmap *m, size_t g, size_t n)
{
	size_t first = g / GPP * GPP, end = (g + n + GPP - 1) / GPP * GPP;

	for (size_t pg = first; pg < end; pg += GPP) {
		size_t k = pg;
		uint64_t s, want;
		bool kept;

		while (k < pg + GPP && !(m->seed[k] & MAYBE))
			k++;
		if (k == pg + GPP)
			continue;
		s = m->seed[k] & ~MAYBE;
		want = gword(s, 0);
		kept = __atomic_compare_exchange_n((uint64_t *)(m->base + k *
		    GRAN), &want, want, false, __ATOMIC_SEQ_CST,
		    __ATOMIC_SEQ_CST);
		if (!kept && want != 0)
			fail(w, "MADV_FREE'd page at %p holds neither its old "
			    "data nor zeros: %#" PRIx64 " at %p", (void *)(
			    m->base + pg * GRAN), want, (void *)(m->base + k *
			    GRAN));
		for (k = pg; k < pg + GPP; k++)
			if (m->seed[k] & MAYBE)
				m->seed[k] = kept ? m->seed[k] & ~MAYBE : 0;
	}
}

/* whether granules [g, g + n) hold MADV_FREE'd data */
static bool
any_free(const struct cmap *m, size_t g, size_t n)
{
	for (size_t k = g; k < g + n; k++)
		if (m->seed[k] & MAYBE)
			return true;
	return false;
}

/* what the kernel says of the page at p, for a failure report: its
   pagemap entry (present, swapped, exclusive, soft-dirty) and, as root,
   the flags of its frame (dirty, anon, swapbacked: clear for an
   MADV_FREE'd page; THP, zero page) */
static void
page_report(const void *p, char *buf, size_t len)
{
	uint64_t pm = 0, kf = 0, pfn;
	uintptr_t va = (uintptr_t)p & ~(PG - 1);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	bool got = fd >= 0 && pread(fd, &pm, 8, (off_t)(va / PG * 8)) == 8;

	if (fd >= 0)
		close(fd);
	pfn = pm & ((1ULL << 55) - 1);
	if (got && (pm >> 63) && pfn != 0 &&
	    (fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (pread(fd, &kf, 8, (off_t)(pfn * 8)) != 8)
			kf = 0;
		close(fd);
	}
	snprintf(buf, len, "pagemap %#" PRIx64 " (%s%s%s%s), kpageflags %#"
	    PRIx64 " (%s%s%s%s%s%s%s)", pm, !got ? "unread" : (pm >> 63) ?
	    "present" : "not present", (pm >> 62) & 1 ? " swapped" : "",
	    (pm >> 56) & 1 ? " exclusive" : "", (pm >> 55) & 1 ?
	    " soft-dirty" : "", kf, (kf >> 4) & 1 ? " dirty" : "",
	    (kf >> 12) & 1 ? " anon" : "", (kf >> 14) & 1 ? " swapbacked" :
	    "", (kf >> 21) & 1 ? " ksm" : "", (kf >> 22) & 1 ? " thp" : "",
	    (kf >> 24) & 1 ? " zero-page" : "", (kf >> 18) & 1 ?
	    " unevictable" : "");
}

/*
 * wrong_data: fail at word i of granule k of m, with what the page's
 * granules hold (x wrong, z zeros) beside the model's marks for them (m
 * free, 0 zeros) and what the kernel says of the page (page_report).
 */
static void __attribute__((noreturn))
wrong_data(struct worker *w, const struct cmap *m, size_t k, long i)
{
	const uint64_t *p = (const uint64_t *)(m->base + k * GRAN);
	uint64_t s = m->seed[k] & ~MAYBE;
	char pr[256], wrong[GPP + 1], maybe[GPP + 1];
	size_t pg = k / GPP * GPP;

	for (size_t j = 0; j < GPP; j++) {
		const uint64_t *pj = (const uint64_t *)(m->base + (pg + j) *
		    GRAN);
		uint64_t sj = m->seed[pg + j];

		wrong[j] = gbad(pj, sj & ~MAYBE) < 0 ? '.' : gbad(pj, 0) < 0 ?
		    'z' : 'x';
		maybe[j] = sj & MAYBE ? 'm' : sj == 0 ? '0' : '.';
	}
	wrong[GPP] = maybe[GPP] = '\0';
	page_report(p, pr, sizeof(pr));
	fail(w, "wrong data at %p (mapping %p+%#zx, granule %zu, word %ld): "
	    "expected %#" PRIx64 ", found %#" PRIx64 "; the page's granules "
	    "%s (x wrong, z zeros), model %s (m free, 0 zeros); mapping prot "
	    "%d%s%s%s; %s", (void *)&p[i], (void *)m->base, k * GRAN + i * 8,
	    k, i, s == 0 ? 0 : gword(s, i), p[i], wrong, maybe, m->prot,
	    m->locked ? " locked" : "", m->dontfork ? " dontfork" : "",
	    m->wipeonfork ? " wipeonfork" : "", pr);
}

static void
verify(struct worker *w, struct cmap *m, size_t g, size_t n)
{
	if (!readable(m))
		return;
	if (writable(m))
		pin(w, m, g, n);
	for (size_t k = g; k < g + n; k++) {
		const uint64_t *p = (const uint64_t *)(m->base + k * GRAN);
		uint64_t s = m->seed[k] & ~MAYBE;
		long i = gbad(p, s);

		/* a free page of a read-only mapping: old data or zeros */
		if (i >= 0 && (m->seed[k] & MAYBE) && gbad(p, 0) < 0)
			i = -1;
		if (i >= 0)
			wrong_data(w, m, k, i);
	}
	atomic_fetch_add(&verified, n * GRAN);
}

static void
verify_all(struct worker *w, struct cmap *maps, int nmaps)
{
	for (int i = 0; i < nmaps; i++)
		if (maps[i].base != NULL)
			verify(w, &maps[i], 0, maps[i].len / GRAN);
}

static void
set_seeds(struct cmap *m, size_t g, size_t n, uint64_t seed)
{
	for (size_t k = g; k < g + n; k++)
		m->seed[k] = seed;
}

static struct cmap *
free_slot(struct worker *w)
{
	for (int i = 0; i < MAXMAPS; i++)
		if (w->map[i].base == NULL)
			return &w->map[i];
	return NULL;
}

static struct cmap *
any_map(struct worker *w)
{
	int n = 0, pick;

	for (int i = 0; i < MAXMAPS; i++)
		n += w->map[i].base != NULL;
	if (n == 0)
		return NULL;
	pick = (int)below(w, n);
	for (int i = 0; i < MAXMAPS; i++)
		if (w->map[i].base != NULL && pick-- == 0)
			return &w->map[i];
	return NULL;
}

static uint64_t *
seeds_new(size_t len)
{
	return raw_alloc(len / GRAN * 8);
}

static void
seeds_free(struct cmap *m)
{
	raw_free(m->seed, m->len / GRAN * 8);
	m->seed = NULL;
}

/* a random page-aligned piece [*pg, *pg + *np) of m, in pages */
static void
pick_pages(struct worker *w, struct cmap *m, size_t most, size_t *pg,
    size_t *np)
{
	size_t pages = m->len / PG;

	*np = 1 + below(w, most < pages ? most : pages);
	*pg = below(w, pages - *np + 1);
}

/* ---- the operations ---------------------------------------------- */

static void
op_map(struct worker *w)
{
	struct cmap *m = free_slot(w);
	static const size_t sizes[] = { 64 << 10, 512 << 10, 1 << 20,
	    2 << 20, 4 << 20, 8 << 20, 16 << 20 };
	size_t len = sizes[below(w, 7)] + below(w, 8) * PG;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;

	if (m == NULL || w->bytes + len > w->cap)
		return;
	if (below(w, 4) == 0)
		flags |= MAP_NORESERVE;
	if (below(w, 8) == 0)
		flags |= MAP_POPULATE;
	note(w, "op %" PRIu64 ": mmap %zu KiB flags %#x", w->op, len >> 10,
	    flags);
	m->base = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		fail(w, "mmap of %zu bytes: %s", len, strerror(errno));
	}
	m->len = len;
	m->seed = seeds_new(len);
	m->prot = PROT_READ | PROT_WRITE;
	m->locked = m->dontfork = m->wipeonfork = false;
	m->managed = len >= (1UL << 20) && !(flags & MAP_POPULATE);
	w->bytes += len;
	note(w, "op %" PRIu64 ": mmap %zu KiB flags %#x at %p", w->op,
	    len >> 10, flags, (void *)m->base);
}

static void
forget(struct worker *w, struct cmap *m)
{
	w->bytes -= m->len;
	seeds_free(m);
	m->base = NULL;
}

/* cut [pg, pg + np) pages out of m's model (already unmapped) */
static void
model_cut(struct worker *w, struct cmap *m, size_t pg, size_t np)
{
	size_t pages = m->len / PG, tail = pages - pg - np;
	size_t keep_first, keep;
	struct cmap *rest;
	uint64_t *seed;

	if (np == pages) {
		forget(w, m);
		return;
	}
	if (pg > 0 && tail > 0) {
		/* the middle: the tail becomes a mapping of its own, or
		   goes too when no slot is left for it */
		if ((rest = free_slot(w)) != NULL) {
			*rest = *m;
			rest->base = m->base + (pg + np) * PG;
			rest->len = tail * PG;
			rest->seed = seeds_new(rest->len);
			memcpy(rest->seed, m->seed + (pg + np) * GPP,
			    tail * GPP * 8);
		} else if (munmap(m->base + (pg + np) * PG, tail * PG) != 0) {
			fail(w, "munmap of a tail: %s", strerror(errno));
		} else {
			w->bytes -= tail * PG;
		}
		tail = 0;	/* m keeps its head */
	}
	/* m keeps its head [0, pg) or its tail [pg + np, pages) */
	keep_first = pg == 0 ? np : 0;
	keep = pg == 0 ? pages - np : pg;
	seed = seeds_new(keep * PG);
	memcpy(seed, m->seed + keep_first * GPP, keep * GPP * 8);
	w->bytes -= np * PG;
	seeds_free(m);
	m->base += keep_first * PG;
	m->len = keep * PG;
	m->seed = seed;
}

static void
op_unmap(struct worker *w)
{
	struct cmap *m = any_map(w);
	size_t pg, np, pages;

	if (m == NULL)
		return;
	pages = m->len / PG;
	switch (below(w, 4)) {
	case 0:	pg = 0; np = pages; break;			/* all */
	case 1: np = 1 + below(w, pages); pg = 0; break;	/* head */
	case 2: np = 1 + below(w, pages); pg = pages - np; break; /* tail */
	default: pick_pages(w, m, pages, &pg, &np); break;	/* middle */
	}
	note(w, "op %" PRIu64 ": munmap %p pages [%zu, %zu) of %zu", w->op,
	    (void *)m->base, pg, pg + np, pages);
	if (munmap(m->base + pg * PG, np * PG) != 0)
		fail(w, "munmap: %s", strerror(errno));
	model_cut(w, m, pg, np);
}

static void
op_mremap(struct worker *w)
{
	struct cmap *m = any_map(w), *d;
	size_t pages, nlen;
	void *p, *to;
	uint64_t *seed;
	int kind = (int)below(w, 4);

	if (m == NULL)
		return;
	pages = m->len / PG;
	if (kind == 0) {		/* grow, moving if it must */
		nlen = m->len + (1 + below(w, 512)) * PG;
		if (w->bytes + nlen - m->len > w->cap)
			return;
		int fl = below(w, 3) ? MREMAP_MAYMOVE : 0;

		note(w, "op %" PRIu64 ": mremap grow %p %zu -> %zu KiB%s",
		    w->op, (void *)m->base, m->len >> 10, nlen >> 10,
		    fl ? " (may move)" : "");
		p = mremap(m->base, m->len, nlen, fl);
		if (p == MAP_FAILED) {
			if (fl == 0 && errno == ENOMEM)
				return;	/* no room in place */
			int e = errno;

			dump_maps(m->base, m->len);
			fail(w, "mremap grow: %s", strerror(e));
		}
		note(w, "op %" PRIu64 ": mremap grow %p %zu -> %zu KiB at %p",
		    w->op, (void *)m->base, m->len >> 10, nlen >> 10, p);
		seed = seeds_new(nlen);
		memcpy(seed, m->seed, m->len / GRAN * 8);
		seeds_free(m);
		w->bytes += nlen - m->len;
		m->base = p;
		m->len = nlen;
		m->seed = seed;
	} else if (kind == 1 && pages > 1) {	/* shrink */
		nlen = (1 + below(w, pages - 1)) * PG;
		note(w, "op %" PRIu64 ": mremap shrink %p %zu -> %zu KiB",
		    w->op, (void *)m->base, m->len >> 10, nlen >> 10);
		p = mremap(m->base, m->len, nlen, 0);
		if (p != m->base)
			fail(w, "mremap shrink: %s", strerror(errno));
		model_cut(w, m, nlen / PG, pages - nlen / PG);
	} else if (kind == 2) {		/* move to a place reserved first */
		to = mmap(NULL, m->len, PROT_NONE, MAP_PRIVATE |
		    MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (to == MAP_FAILED)
			fail(w, "mmap of a reservation: %s", strerror(errno));
		note(w, "op %" PRIu64 ": mremap move %p -> %p (%zu KiB)",
		    w->op, (void *)m->base, to, m->len >> 10);
		p = mremap(m->base, m->len, m->len, MREMAP_MAYMOVE |
		    MREMAP_FIXED, to);
		if (p != to) {
			int e = errno;

			dump_maps(m->base, m->len);
			fail(w, "mremap move: %s", strerror(e));
		}
		m->base = p;
	} else if ((d = free_slot(w)) != NULL &&
	    w->bytes + m->len <= w->cap) {	/* DONTUNMAP */
		note(w, "op %" PRIu64 ": mremap DONTUNMAP %p (%zu KiB)",
		    w->op, (void *)m->base, m->len >> 10);
		p = mremap(m->base, m->len, m->len, MREMAP_MAYMOVE |
		    MREMAP_DONTUNMAP);
		if (p == MAP_FAILED) {
			/* refused where it cannot be (e.g. a locked range
			   on some kernels): nothing moved */
			if (errno == EINVAL)
				return;
			fail(w, "mremap DONTUNMAP: %s", strerror(errno));
		}
		note(w, "op %" PRIu64 ": mremap DONTUNMAP %p (%zu KiB) to %p",
		    w->op, (void *)m->base, m->len >> 10, p);
		*d = *m;
		d->base = p;
		d->seed = seeds_new(m->len);
		memcpy(d->seed, m->seed, m->len / GRAN * 8);
		w->bytes += m->len;
		/* the old range stays, empty and unlocked */
		set_seeds(m, 0, m->len / GRAN, 0);
		m->locked = false;
	}
}

static void
op_madvise(struct worker *w)
{
	static const struct { int adv; const char *name; } kinds[] = {
		{ MADV_DONTNEED, "DONTNEED" }, { MADV_FREE, "FREE" },
		{ MADV_COLD, "COLD" }, { MADV_PAGEOUT, "PAGEOUT" },
		{ MADV_WILLNEED, "WILLNEED" }, { MADV_NORMAL, "NORMAL" },
		{ MADV_RANDOM, "RANDOM" }, { MADV_SEQUENTIAL, "SEQUENTIAL" },
		{ MADV_HUGEPAGE, "HUGEPAGE" }, { MADV_NOHUGEPAGE, "NOHUGEPAGE" },
		{ MADV_DONTDUMP, "DONTDUMP" }, { MADV_DODUMP, "DODUMP" },
		{ MADV_POPULATE_READ, "POPULATE_READ" },
		{ MADV_POPULATE_WRITE, "POPULATE_WRITE" },
		{ MADV_COLLAPSE, "COLLAPSE" }, { MADV_REMOVE, "REMOVE" },
		{ MADV_DONTFORK, "DONTFORK" }, { MADV_DOFORK, "DOFORK" },
		{ MADV_WIPEONFORK, "WIPEONFORK" },
		{ MADV_KEEPONFORK, "KEEPONFORK" },
	};
	struct cmap *m = any_map(w);
	size_t pg, np, k = below(w, sizeof(kinds) / sizeof(kinds[0]));
	int adv = kinds[k].adv, r;
	bool whole;

	if (m == NULL)
		return;
	/* advice that sets a flag of the mapping applies to all of it: a
	   piece would split the kernel's VMA, and mremap wants one VMA */
	whole = adv != MADV_DONTNEED && adv != MADV_FREE && adv != MADV_COLD &&
	    adv != MADV_PAGEOUT && adv != MADV_WILLNEED &&
	    adv != MADV_POPULATE_READ && adv != MADV_POPULATE_WRITE &&
	    adv != MADV_COLLAPSE && adv != MADV_REMOVE;
	if (whole) {
		pg = 0;
		np = m->len / PG;
	} else {
		pick_pages(w, m, 256, &pg, &np);
	}
	note(w, "op %" PRIu64 ": madvise %s %p pages [%zu, %zu)", w->op,
	    kinds[k].name, (void *)m->base, pg, pg + np);
	r = madvise(m->base + pg * PG, np * PG, adv);
	if (r != 0) {
		int e = errno;

		/* what the kernel refuses: dropping locked pages, REMOVE on
		   private memory, POPULATE on what cannot be accessed so,
		   COLLAPSE and HUGEPAGE where THP cannot */
		if ((e == EINVAL && (m->locked || adv == MADV_REMOVE ||
		    adv == MADV_HUGEPAGE || adv == MADV_NOHUGEPAGE ||
		    adv == MADV_COLLAPSE)) ||
		    ((e == EAGAIN || e == ENOMEM) && adv == MADV_COLLAPSE) ||
		    ((adv == MADV_POPULATE_READ || adv == MADV_POPULATE_WRITE ||
		    adv == MADV_COLLAPSE) && !writable(m))) {
			atomic_fetch_add(&nskipped, 1);
			return;
		}
		fail(w, "madvise %s of %p+%zu (prot %d%s): %s", kinds[k].name,
		    (void *)(m->base + pg * PG), np * PG, m->prot, m->locked ?
		    ", locked" : "", strerror(e));
	}
	switch (adv) {
	case MADV_DONTNEED:
		set_seeds(m, pg * GPP, np * GPP, 0);
		break;
	case MADV_FREE:
		for (size_t g = pg * GPP; g < (pg + np) * GPP; g++)
			if (m->seed[g] != 0)
				m->seed[g] |= MAYBE;
		break;
	case MADV_DONTFORK:	m->dontfork = true; break;
	case MADV_DOFORK:	m->dontfork = false; break;
	case MADV_WIPEONFORK:	m->wipeonfork = true; break;
	case MADV_KEEPONFORK:	m->wipeonfork = false; break;
	default:
		break;
	}
}

static void
op_mprotect(struct worker *w)
{
	static const int prots[] = { PROT_NONE, PROT_READ,
	    PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE };
	struct cmap *m = any_map(w);
	int prot = prots[below(w, 4)];

	if (m == NULL)
		return;
	note(w, "op %" PRIu64 ": mprotect %p %zu KiB %d -> %d", w->op,
	    (void *)m->base, m->len >> 10, m->prot, prot);
	if (mprotect(m->base, m->len, prot) != 0)
		fail(w, "mprotect: %s", strerror(errno));
	m->prot = prot;
}

static void
op_mlock(struct worker *w)
{
	struct cmap *m = any_map(w);
	int r;

	if (m == NULL)
		return;
	if (m->locked) {
		note(w, "op %" PRIu64 ": munlock %p", w->op, (void *)m->base);
		r = munlock(m->base, m->len);
	} else if (m->len > (8UL << 20) || m->prot == PROT_NONE) {
		/* locked memory is taken from the budget; a PROT_NONE
		   mapping would be locked although mlock fails */
		return;
	} else if (below(w, 2)) {
		note(w, "op %" PRIu64 ": mlock %p", w->op, (void *)m->base);
		r = mlock(m->base, m->len);
	} else {
		note(w, "op %" PRIu64 ": mlock2 ONFAULT %p", w->op,
		    (void *)m->base);
		r = mlock2(m->base, m->len, MLOCK_ONFAULT);
	}
	if (r != 0) {
		if (errno == ENOMEM || errno == EAGAIN) {	/* limits */
			note(w, "op %" PRIu64 ": mlock/munlock refused: %s",
			    w->op, strerror(errno));
			atomic_fetch_add(&nskipped, 1);
			/* a refused mlock may leave part of it locked */
			if (munlock(m->base, m->len) != 0)
				fail(w, "munlock: %s", strerror(errno));
			m->locked = false;
			return;
		}
		fail(w, "mlock/munlock: %s", strerror(errno));
	}
	m->locked = !m->locked;
}

static void
op_write(struct worker *w)
{
	struct cmap *m = any_map(w);
	size_t g, n;

	if (m == NULL || !writable(m))
		return;
	n = 1 + below(w, below(w, 4) == 0 ? 2048 : 64);
	if (n > m->len / GRAN)
		n = m->len / GRAN;
	g = below(w, m->len / GRAN - n + 1);
	note(w, "op %" PRIu64 ": store %p granules [%zu, %zu)", w->op,
	    (void *)m->base, g, g + n);
	pin(w, m, g, n);
	for (size_t k = g; k < g + n; k++) {
		m->seed[k] = fresh(w);
		fill((uint64_t *)(m->base + k * GRAN), m->seed[k]);
	}
}

static void
op_verify(struct worker *w)
{
	struct cmap *m = any_map(w);
	size_t g, n;

	if (m == NULL)
		return;
	n = 1 + below(w, 4096);
	if (n > m->len / GRAN)
		n = m->len / GRAN;
	g = below(w, m->len / GRAN - n + 1);
	note(w, "op %" PRIu64 ": load %p granules [%zu, %zu)", w->op,
	    (void *)m->base, g, g + n);
	verify(w, m, g, n);
}

/* a source and a destination range, `align` aligned, at most `most` */
static bool
pick_io(struct worker *w, struct cmap **src, size_t *sg, struct cmap **dst,
    size_t *dg, size_t *n, size_t align, size_t most)
{
	size_t a = align / GRAN;

	*src = any_map(w);
	*dst = any_map(w);
	if (*src == NULL || !readable(*src) || !writable(*dst))
		return false;
	*n = a * (1 + below(w, most / align));
	if (*n > (*src)->len / GRAN || *n > (*dst)->len / GRAN)
		return false;
	*sg = below(w, ((*src)->len / GRAN - *n) / a + 1) * a;
	*dg = below(w, ((*dst)->len / GRAN - *n) / a + 1) * a;
	/* a read-only source's free pages may go while they are copied */
	return writable(*src) || !any_free(*src, *sg, *n);
}

/* before a copy: the source is what the model says, and the pages of
   the destination it covers in part keep the rest */
static void
pin_io(struct worker *w, struct cmap *s, size_t sg, struct cmap *d,
    size_t dg, size_t n)
{
	if (writable(s))
		pin(w, s, sg, n);
	pin(w, d, dg, n);
}

static void
op_pipe(struct worker *w)
{
	struct cmap *s, *d;
	size_t sg, dg, n;
	int fd[2];
	ssize_t r;

	if (!pick_io(w, &s, &sg, &d, &dg, &n, GRAN, IO_MAX))
		return;
	note(w, "op %" PRIu64 ": pipe %p+%zu -> %p+%zu, %zu granules",
	    w->op, (void *)s->base, sg, (void *)d->base, dg, n);
	pin_io(w, s, sg, d, dg, n);
	if (pipe(fd) != 0)
		fail(w, "pipe: %s", strerror(errno));
	if ((r = write(fd[1], s->base + sg * GRAN, n * GRAN)) !=
	    (ssize_t)(n * GRAN))
		fail(w, "write to a pipe: %zd of %zu (%s)", r, n * GRAN,
		    strerror(errno));
	if ((r = read(fd[0], d->base + dg * GRAN, n * GRAN)) !=
	    (ssize_t)(n * GRAN))
		fail(w, "read from a pipe: %zd of %zu (%s)", r, n * GRAN,
		    strerror(errno));
	close(fd[0]);
	close(fd[1]);
	memmove(d->seed + dg, s->seed + sg, n * 8);
}

/* a random granule of the thread's file for n granules, align-aligned */
static size_t
file_pick(struct worker *w, size_t n, size_t align)
{
	return below(w, (FILE_PAGES * GPP - n) / (align / GRAN) + 1) *
	    (align / GRAN);
}

/* n granules between buf and the file at granule fg, in one call or, with
   split > 0, vectored in two pieces the first of split granules; a short
   transfer fails the run */
static void
file_xfer(struct worker *w, int fd, char *buf, size_t n, size_t fg,
    size_t split, bool write)
{
	off_t off = (off_t)(fg * GRAN);
	struct iovec v[2] = { { buf, split * GRAN },
	    { buf + split * GRAN, (n - split) * GRAN } };
	ssize_t r;

	if (split > 0)
		r = write ? pwritev(fd, v, 2, off) : preadv(fd, v, 2, off);
	else
		r = write ? pwrite(fd, buf, n * GRAN, off) :
		    pread(fd, buf, n * GRAN, off);
	if (r != (ssize_t)(n * GRAN))
		fail(w, "%s: %zd of %zu (%s)", write ? "pwrite" : "pread", r,
		    n * GRAN, strerror(errno));
}

/* through the thread's file: memory -> file -> memory, buffered,
   vectored or O_DIRECT */
static void
op_file(struct worker *w)
{
	int how = (int)below(w, 3), fd;
	size_t align = how == 2 ? PG : GRAN, sg, dg, n, fg;
	struct cmap *s, *d;

	if (how == 2 && w->dfd < 0)
		how = 0;
	fd = how == 2 ? w->dfd : w->fd;
	if (!pick_io(w, &s, &sg, &d, &dg, &n, align, IO_MAX * 4))
		return;
	fg = file_pick(w, n, align);
	note(w, "op %" PRIu64 ": file(%s) %p+%zu -> file+%zu -> %p+%zu, %zu "
	    "granules", w->op, how == 0 ? "pwrite/pread" : how == 1 ?
	    "pwritev/preadv" : "O_DIRECT", (void *)s->base, sg, fg,
	    (void *)d->base, dg, n);
	pin_io(w, s, sg, d, dg, n);
	file_xfer(w, fd, s->base + sg * GRAN, n, fg, how == 1 ? n / 2 : 0,
	    true);
	memcpy(w->fseed + fg, s->seed + sg, n * 8);
	/* back, from a random place of the file */
	fg = file_pick(w, n, align);
	file_xfer(w, fd, d->base + dg * GRAN, n, fg, how == 1 ?
	    (n + 1) / 2 : 0, false);
	memcpy(d->seed + dg, w->fseed + fg, n * 8);
}

/* ---- fork --------------------------------------------------------- */

static int	child_main(struct worker *w);
static void	open_file(struct worker *w);

/* at the end: the last child's status */
static void
reap_child(struct worker *w)
{
	int status;

	if (child > 0 && waitpid(child, &status, 0) == child &&
	    (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		fail(w, "the fork child %d %s %d", child, WIFEXITED(status) ?
		    "exited" : "died of signal", WIFEXITED(status) ?
		    WEXITSTATUS(status) : WTERMSIG(status));
	child = 0;
}

static void
op_fork(struct worker *w)
{
	int status;
	pid_t pid;

	/* one fork at a time; a thread that finds one under way goes on
	   (waiting for the mutex while holding forklock could deadlock) */
	if (opt.in_child || pthread_mutex_trylock(&childlock) != 0)
		return;
	if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail(w, "the fork child %d %s %d", child,
			    WIFEXITED(status) ? "exited" : "died of signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status));
		child = 0;
	}
	if (child != 0) {
		pthread_mutex_unlock(&childlock);
		return;
	}
	note(w, "op %" PRIu64 ": fork", w->op);
	/* no operation of any thread is under way while forklock is held
	   exclusively: the child's copy of each thread's memory matches
	   that thread's model */
	pthread_rwlock_unlock(&forklock);
	pthread_rwlock_wrlock(&forklock);
	pid = fork();
	if (pid == 0)
		_exit(child_main(w));
	if (pid < 0)
		fail(w, "fork: %s", strerror(errno));
	child = pid;
	atomic_fetch_add(&nforks, 1);
	pthread_rwlock_unlock(&forklock);
	pthread_rwlock_rdlock(&forklock);
	pthread_mutex_unlock(&childlock);
}

static const struct {
	void		(*fn)(struct worker *);
	int		  weight;
	const char	 *name;		/* for --skip */
} ops[] = {
	{ op_write, 26, "store" }, { op_verify, 20, "load" },
	{ op_map, 7, "mmap" }, { op_unmap, 5, "munmap" },
	{ op_mremap, 7, "mremap" }, { op_madvise, 10, "madvise" },
	{ op_mprotect, 5, "mprotect" }, { op_mlock, 3, "mlock" },
	{ op_pipe, 5, "pipe" }, { op_file, 6, "file" }, { op_fork, 1, "fork" },
};
#define NOPS	(sizeof(ops) / sizeof(ops[0]))

/* one operation, by weight */
static void
step(struct worker *w)
{
	int total = 0, pick;

	for (size_t i = 0; i < NOPS; i++)
		total += opt.skip & (1u << i) ? 0 : ops[i].weight;
	pick = (int)below(w, total);
	for (size_t i = 0; i < NOPS; i++) {
		if (opt.skip & (1u << i))
			continue;
		if (pick < ops[i].weight) {
			ops[i].fn(w);
			return;
		}
		pick -= ops[i].weight;
	}
}

static bool
done(struct worker *w)
{
	if (atomic_load(&stop))
		return true;
	if (opt.ops != 0 && w->op >= opt.ops)
		return true;
	return opt.seconds > 0 && (w->op & 15) == 0 && now() >= opt.t_end;
}

/* --check-uffd: every VMA of a managed mapping is registered ("um") */
static void
check_uffd(struct worker *w)
{
	char line[512];
	uintptr_t s, e, cs = 0, ce = 0;
	struct cmap *cm = NULL;
	bool want = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &s, &e) == 2 &&
		    line[8] != ':' && strchr(line, ':') != NULL) {
			want = false;
			for (int i = 0; i < MAXMAPS; i++) {
				struct cmap *m = &w->map[i];

				if (m->base != NULL && m->managed &&
				    (uintptr_t)m->base < e &&
				    (uintptr_t)m->base + m->len > s) {
					want = true;
					cm = m;
				}
			}
			cs = s;
			ce = e;
		} else if (want && strncmp(line, "VmFlags:", 8) == 0 &&
		    strstr(line, " um") == NULL) {
			fclose(f);
			dump_maps((void *)cs, ce - cs);
			fail(w, "[%#lx, %#lx) of the managed mapping %p+%zu "
			    "KiB is not registered", (unsigned long)cs,
			    (unsigned long)ce, (void *)cm->base, cm->len >> 10);
		}
	}
	fclose(f);
}

/* read_small: up to len - 1 bytes of a small file, NUL-terminated, first
   line only; no allocation (see dump_tasks) */
static void
read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* dump_file: a small file's text on stderr, as it is (no allocation) */
static void
dump_file(const char *path)
{
	char buf[2048];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		(void)!write(2, buf, (size_t)n);
	close(fd);
}

/*
 * dump_tasks: every task of process pid, its name, state, wait channel
 * and (as root) kernel stack, on stderr.  Nothing here may allocate:
 * under upvm run the allocator may need an mmap, i.e. the map lock, which a hang may hold
 * (stdio's FILE and opendir allocate; so raw descriptors, getdents64 and
 * one unbuffered write per line).
 */
static void
dump_tasks(pid_t pid)
{
	char path[96], comm[64], stat[512], wchan[64], line[192], ents[4096];
	long n;
	int d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return;
	while ((n = syscall(SYS_getdents64, d, ents, sizeof(ents))) > 0) {
		for (long off = 0; off < n;) {
			/* struct linux_dirent64: ino, off, reclen, type, name */
			unsigned short reclen;
			int tid;

			memcpy(&reclen, ents + off + 16, sizeof(reclen));
			tid = atoi(ents + off + 19);
			off += reclen;
			if (tid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%d/comm",
			    (int)pid, tid);
			read_small(path, comm, sizeof(comm));
			snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan",
			    (int)pid, tid);
			read_small(path, wchan, sizeof(wchan));
			snprintf(path, sizeof(path), "/proc/%d/task/%d/stat",
			    (int)pid, tid);
			read_small(path, stat, sizeof(stat));
			/* the state is the field after the ")" of the name */
			char *st = strrchr(stat, ')');
			int len = snprintf(line, sizeof(line), "chaos:   task %d "
			    "%-16s state %c wchan %s\n", tid, comm, st != NULL &&
			    st[1] != '\0' ? st[2] : '?', wchan[0] != '\0' ?
			    wchan : "-");

			if (len > (int)sizeof(line) - 1)
				len = (int)sizeof(line) - 1;
			(void)!write(2, line, (size_t)len);
			/* and where it waits in the kernel (root only) */
			snprintf(path, sizeof(path), "/proc/%d/task/%d/stack",
			    (int)pid, tid);
			dump_file(path);
		}
	}
	close(d);
}

/*
 * stall_watch: the hang detector.  Every second it sums the threads'
 * operation counts; when the sum has not moved for --stall seconds it
 * reports and ends the process (a child of a fork in progress is killed
 * with it: its parent's thread is the one stalled).  It touches only the
 * workers' table and unbuffered stderr, never a mapping under test, and
 * allocates nothing.
 */
static void *
stall_watch(void *arg)
{
	uint64_t last = UINT64_MAX;
	unsigned still = 0;

	(void)arg;
	for (;;) {
		uint64_t sum = 0;

		sleep(1);
		for (int t = 0; t < opt.nthreads; t++)
			sum += __atomic_load_n(&workers[t].op,
			    __ATOMIC_RELAXED);
		still = sum == last ? still + 1 : 0;
		last = sum;
		if (still < opt.stall)
			continue;
		flockfile(stderr);
		fprintf(stderr, "chaos: STALLED seed %" PRIu64 ": no thread "
		    "finished an operation for %u s\n", opt.seed, opt.stall);
		for (int t = 0; t < opt.nthreads; t++) {
			struct worker *w = &workers[t];
			uint64_t op = __atomic_load_n(&w->op, __ATOMIC_RELAXED);

			fprintf(stderr, "chaos: thread %d at op %" PRIu64
			    ", its last operations, oldest first:\n", t, op);
			for (uint64_t k = op + 1; k <= op + HISTORY; k++)
				if (w->hist[k % HISTORY] != NULL)
					fprintf(stderr, "  %s\n",
					    w->hist[k % HISTORY]);
		}
		fprintf(stderr, "chaos: the process's tasks:\n");
		dump_tasks(getpid());
		/* the lock is held across fork(): a hang in fork keeps it */
		if (pthread_mutex_trylock(&childlock) != 0) {
			fprintf(stderr, "chaos: a thread is in fork()\n");
		} else {
			if (child > 0) {
				fprintf(stderr, "chaos: the fork child %d's "
				    "tasks:\n", (int)child);
				dump_tasks(child);
			}
			pthread_mutex_unlock(&childlock);
		}
		fprintf(stderr, "chaos: replay: chaos --seed %" PRIu64
		    " --threads %d --size %zu\n", opt.seed, opt.nthreads,
		    opt.size >> 20);
		funlockfile(stderr);
		pthread_mutex_lock(&childlock);
		if (child > 0)
			kill(child, SIGKILL);
		pthread_mutex_unlock(&childlock);
		_exit(3);
	}
	return NULL;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_rwlock_rdlock(&forklock);
	while (!done(w)) {
		step(w);
		if (opt.check_uffd)
			check_uffd(w);
		w->op++;
		if ((w->op & 7) == 0) {	/* let a fork in */
			pthread_rwlock_unlock(&forklock);
			pthread_rwlock_rdlock(&forklock);
		}
	}
	note(w, "op %" PRIu64 ": final check of every mapping", w->op);
	verify_all(w, w->map, MAXMAPS);
	pthread_rwlock_unlock(&forklock);
	return NULL;
}

/* the child of a fork: every mapping of every thread is now its own */
static int
child_main(struct worker *parent)
{
	struct worker *w = parent;
	uint64_t ops = 100 + below(parent, 300);

	opt.in_child = true;
	child = 0;
	/* files of its own: the parent's threads go on writing theirs */
	for (int t = 0; t < opt.nthreads; t++) {
		close(workers[t].fd);
		if (workers[t].dfd >= 0)
			close(workers[t].dfd);
		raw_free(workers[t].fseed, FILE_PAGES * GPP * 8);
		open_file(&workers[t]);
	}
	/* what fork gave: DONTFORK mappings are not here, WIPEONFORK ones
	   are zeros, the rest the parent's data, none of it locked */
	for (int t = 0; t < opt.nthreads; t++) {
		for (int i = 0; i < MAXMAPS; i++) {
			struct cmap *m = &workers[t].map[i];

			if (m->base == NULL)
				continue;
			m->locked = false;	/* locks are not inherited */
			if (m->dontfork) {
				seeds_free(m);
				m->base = NULL;
			} else if (m->wipeonfork) {
				set_seeds(m, 0, m->len / GRAN, 0);
			}
		}
	}
	for (int t = 0; t < opt.nthreads; t++)
		verify_all(w, workers[t].map, MAXMAPS);
	/* then a sequence of its own, on thread `parent`'s mappings and
	   another thread's */
	w->rng = mix(w->rng ^ 0xc41d);
	for (uint64_t k = 0; k < ops; k++, w->op++) {
		if (below(w, 2) && opt.nthreads > 1) {
			struct worker *o = &workers[(w->id + 1) %
			    opt.nthreads];

			o->rng = w->rng;
			o->op = w->op;
			o->cap = o->bytes + (8UL << 20);
			step(o);
			w->rng = o->rng;
		} else {
			step(w);
		}
	}
	for (int t = 0; t < opt.nthreads; t++)
		verify_all(w, workers[t].map, MAXMAPS);
	return 0;
}

/* ---- main ----------------------------------------------------------- */

static void __attribute__((noreturn))
usage(const char *why)
{
	fprintf(stderr, "chaos: %s\nusage: chaos [--seed N] [--threads 1..%d]"
	    " [--ops N] [--seconds N] [--minutes N] [--size MiB] [--dir DIR]"
	    " [--skip OP,...] [--stall SECONDS] [--quiet] [--trace]\n", why,
	    MAXTHREADS);
	exit(2);
}

static uint64_t
num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
		char why[128];

		snprintf(why, sizeof(why), "%s wants a number, not '%s'",
		    what, s);
		usage(why);
	}
	return v;
}

/* --skip mmap,fork,...: operations left out; mmap, store and load stay */
static unsigned
skip_list(const char *list)
{
	char buf[256], *tok, *save;
	unsigned mask = 0;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NOPS && strcmp(ops[i].name, tok) != 0; i++)
			;
		if (i == NOPS || ops[i].fn == op_map ||
		    ops[i].fn == op_write || ops[i].fn == op_verify) {
			fprintf(stderr, "chaos: --skip: '%s' is not an "
			    "operation that can be left out (munmap mremap "
			    "madvise mprotect mlock pipe file fork)\n", tok);
			exit(2);
		}
		mask |= 1u << i;
	}
	return mask;
}

static void
open_file(struct worker *w)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/chaos-%d-%d.XXXXXX", opt.dir,
	    (int)getpid(), w->id);
	if ((w->fd = mkstemp(path)) < 0) {
		fprintf(stderr, "chaos: cannot create a file in %s (%s); "
		    "give --dir a writable directory\n", opt.dir,
		    strerror(errno));
		exit(2);
	}
	if (ftruncate(w->fd, FILE_PAGES * PG) != 0) {
		fprintf(stderr, "chaos: cannot size %s: %s\n", path,
		    strerror(errno));
		exit(2);
	}
	/* O_DIRECT where the file system has it (tmpfs may not) */
	w->dfd = open(path, O_RDWR | O_DIRECT);
	unlink(path);
	w->fseed = raw_alloc(FILE_PAGES * GPP * 8);
}

int
main(int argc, char **argv)
{
	double t0 = now();
	uint64_t ops = 0;
	bool seeded = false;

	opt.dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--quiet") == 0 || strcmp(a, "--trace") == 0 ||
		    strcmp(a, "--check-uffd") == 0) {
			opt.quiet |= a[2] == 'q';
			opt.trace |= a[2] == 't';
			opt.check_uffd |= a[2] == 'c';
			continue;
		}
		if (v == NULL)
			usage("an option wants a value");
		i++;
		if (strcmp(a, "--seed") == 0) {
			opt.seed = num(v, a);
			seeded = true;
		} else if (strcmp(a, "--threads") == 0) {
			opt.nthreads = (int)num(v, a);
		} else if (strcmp(a, "--ops") == 0) {
			opt.ops = num(v, a);
		} else if (strcmp(a, "--seconds") == 0) {
			opt.seconds = (double)num(v, a);
		} else if (strcmp(a, "--minutes") == 0) {
			opt.seconds = 60.0 * (double)num(v, a);
		} else if (strcmp(a, "--size") == 0) {
			opt.size = num(v, a) << 20;
		} else if (strcmp(a, "--dir") == 0) {
			opt.dir = v;
		} else if (strcmp(a, "--skip") == 0) {
			opt.skip = skip_list(v);
		} else if (strcmp(a, "--stall") == 0) {
			opt.stall = (unsigned)num(v, a);
		} else {
			usage("unknown option");
		}
	}
	if (opt.nthreads < 1 || opt.nthreads > MAXTHREADS)
		usage("--threads is 1 to 16");
	if (opt.size < (4UL << 20) || opt.size > (1UL << 40))
		usage("--size is 4 MiB to 1 TiB");
	if (opt.ops == 0 && opt.seconds == 0)
		opt.seconds = 30;
	if (!seeded)
		opt.seed = mix((uint64_t)time(NULL) ^ (uint64_t)getpid());
	opt.t_end = t0 + opt.seconds;
	if (!opt.quiet)
		printf("chaos: seed %" PRIu64 ", %d threads, %zu MiB, %s\n",
		    opt.seed, opt.nthreads, opt.size >> 20, opt.ops ?
		    "a number of operations" : "for a time");
	fflush(stdout);
	pthread_rwlockattr_t ra;

	/* writer first: the readers take it again every few operations */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&forklock, &ra);
	workers = raw_alloc(sizeof(*workers) * opt.nthreads);
	for (int t = 0; t < opt.nthreads; t++) {
		struct worker *w = &workers[t];

		w->id = t;
		w->rng = mix(opt.seed + (uint64_t)t * 0x1000193);
		w->cap = opt.size / opt.nthreads;
		open_file(w);
	}
	if (opt.stall > 0) {
		/* its stack raw-mmap'd too: under `upvm run` a thread's
		   stack is managed memory, and a hang of the fault service
		   stopped the report at its first stack page paged out */
		size_t stk = 256 << 10;
		pthread_attr_t attr;
		pthread_t wd;

		if (pthread_attr_init(&attr) != 0 ||
		    pthread_attr_setstack(&attr, raw_alloc(stk), stk) != 0 ||
		    pthread_create(&wd, &attr, stall_watch, NULL) != 0) {
			fprintf(stderr, "chaos: pthread_create failed\n");
			return 2;
		}
		pthread_attr_destroy(&attr);
		pthread_detach(wd);
	}
	if (opt.nthreads == 1) {
		worker_main(&workers[0]);
	} else {
		for (int t = 0; t < opt.nthreads; t++)
			if (pthread_create(&workers[t].tid, NULL, worker_main,
			    &workers[t]) != 0) {
				fprintf(stderr, "chaos: pthread_create failed\n");
				return 2;
			}
		for (int t = 0; t < opt.nthreads; t++)
			pthread_join(workers[t].tid, NULL);
	}
	reap_child(&workers[0]);
	for (int t = 0; t < opt.nthreads; t++) {
		for (int i = 0; i < MAXMAPS; i++)
			if (workers[t].map[i].base != NULL)
				munmap(workers[t].map[i].base,
				    workers[t].map[i].len);
		ops += workers[t].op;
	}
	printf("chaos: OK seed %" PRIu64 ": %" PRIu64 " operations, %llu "
	    "forks, %llu refused as the kernel does, %.1f MiB verified, "
	    "%.1f s\n", opt.seed, ops, (unsigned long long)nforks,
	    (unsigned long long)nskipped, (double)verified / (1 << 20),
	    now() - t0);
	return 0;
}
