/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvm.h: the public interface of libupvm, a user-space paging runtime.
 *
 * upvm takes over the page faults of the regions it maps (userfaultfd) and
 * resolves them in clusters from its own fault threads.  Every function
 * returns 0 (or a count) on success and a negative errno on failure, after
 * logging one line on stderr that says what was wrong and what to do.
 * Functions are thread-safe.  None of them may be called with output
 * pointers into memory of a region that is being unmapped concurrently.
 */
#ifndef UPVM_H
#define UPVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UPVM_VERSION	"0.1.0"

/* log levels (UPVM_LOG=none|error|warn|info|debug) */
#define UPVM_LOG_NONE	0
#define UPVM_LOG_ERROR	1
#define UPVM_LOG_WARN	2
#define UPVM_LOG_INFO	3
#define UPVM_LOG_DEBUG	4

/*
 * Configuration.  upvm_config_from_env() starts from the defaults, applies
 * UPVM_CONF="key:value,key:value" (jemalloc's MALLOC_CONF style), then the
 * single variables, which win:
 *
 *	key	  variable	  meaning (default)
 *	cluster	  UPVM_CLUSTER	  pages resolved around a random fault, a
 *				  power of two 1..512 (16)
 *	seq_max	  UPVM_SEQ_MAX	  widest window resolved ahead of a sequential
 *				  stream, pages, power of two 16..1024 (512)
 *	handlers  UPVM_HANDLERS	  fault threads 0..256; 0 = one per online CPU
 *				  (each keeps 32 pageins in flight; the
 *				  first serves alone until 8 faults come at
 *				  once) (0)
 *	spin_us	  UPVM_SPIN_US	  microseconds a fault thread polls before it
 *				  sleeps, 0..10000 (0)
 *	pin	  UPVM_PIN	  keep the first fault thread on its CPU too,
 *				  not only while the others help: 0 or 1 (0)
 *	log	  UPVM_LOG	  none|error|warn|info|debug (warn)
 *	budget	  UPVM_BUDGET	  resident bytes allowed to managed memory:
 *				  a size (K/M/G/T suffix) or a percentage of
 *				  RAM ("25%"); 0 = no budget, nothing pages
 *				  out (0)
 *	swap	  UPVM_SWAP	  directory for the private swap file, or the
 *				  path of a new file ($TMPDIR, else /var/tmp)
 *	swap_max  UPVM_SWAP_MAX	  cap on the swap file, a size (64G)
 *	swap_encrypt UPVM_SWAP_ENCRYPT  0 or 1: pages in the swap file are
 *				  encrypted and authenticated (AES-256-GCM,
 *				  a random key per process); always so in a
 *				  remote store (swap memcached://...)
 *	swap_tier UPVM_SWAP_TIER  a second tier, used when the first is full:
 *				  memcached://... after a swap directory, or
 *				  a directory after a memcached:// swap
 *	threshold UPVM_THRESHOLD  with libupvm.so preloaded (upvm run): the
 *				  smallest anonymous private mapping that is
 *				  managed, a size (1M)
 *	files	  UPVM_FILES	  with libupvm.so preloaded: manage mappings
 *				  of regular files at least threshold large
 *				  too (shared, private, read-only): 0 or 1 (0)
 *	stats	  UPVM_STATS	  with libupvm.so preloaded: at exit, a
 *				  summary on stderr ("-") or JSON in a file,
 *				  "%p" in its name the pid ("": none)
 *	pageout	  UPVM_PAGEOUT	  how pages leave: auto, move (UFFDIO_MOVE
 *				  staging + asynchronous dirty tracking,
 *				  Linux 6.8) or wp (synchronous write
 *				  protection, any kernel with uffd-wp);
 *				  auto = move where the kernel has it (auto)
 *	numa	  UPVM_NUMA	  where resolved pages go: none (the kernel
 *				  decides), local (the faulting thread's
 *				  node), bind:N, preferred:N,
 *				  interleave[:NODES] (NODES as 0,2 or 0-3)
 *				  or nearest (local while it has room, else
 *				  the nearest node by distance) (local)
 *	node_budget UPVM_NODE_BUDGET  resident pages allowed per node, as
 *				  0=1G,1=4G: a node past its budget demotes
 *				  its coldest pages to the nearest node with
 *				  room; swap only when none has.  Sets the
 *				  budget if none is given (none)
 *	numa_promote UPVM_NUMA_PROMOTE  0 or 1: a demoted unit of pages
 *				  written again (a second write fault in it
 *				  within a turn of the clock) moves back to
 *				  the writer's node when that has room.
 *				  Needs node budgets and local, nearest or
 *				  preferred:N; uses the wp pageout protocol
 *				  (writes must fault) (0)
 *	inactive  UPVM_INACTIVE	  percent of the budget kept as inactive
 *				  pages, 0..50: pages the pageout daemon
 *				  took out of the page tables but keeps in
 *				  memory, clean, for a while; a fault on one
 *				  maps it back with no I/O (move pageout
 *				  protocol only; 0 = off) (0)
 *	flush	  UPVM_FLUSH	  with a budget: every this many seconds the
 *				  dirty pages of shared file regions are
 *				  written back (the kernel's flusher): a
 *				  program killed loses at most the writes
 *				  of the last interval; 0..3600, 0 = only
 *				  at msync, unmap, eviction and exit (30)
 *	daemon	  UPVM_DAEMON	  the socket of upvmd: attach to it, which
 *				  then sets the budget (one budget for every
 *				  process attached); budget, if given, caps
 *				  this process's share ("": none)
 *
 * A key's value in UPVM_CONF cannot hold a comma: write ';' for ',' in
 * node lists and node budgets there.
 */
#define UPVM_PATH_MAX	256
#define UPVM_NUMA_NAME_MAX 192

/* upvm_config.pageout */
#define UPVM_PAGEOUT_AUTO	0
#define UPVM_PAGEOUT_MOVE	1
#define UPVM_PAGEOUT_WP		2

struct upvm_config {
	unsigned	cluster_pages;
	unsigned	seq_max_pages;
	unsigned	readahead_pages;	/* read around a random pagein */
	unsigned	handlers;
	unsigned	spin_us;
	bool		pin_handlers;
	int		log_level;
	uint64_t	budget;			/* bytes, 0: none */
	char		swap_path[UPVM_PATH_MAX]; /* "": default */
	uint64_t	swap_max;		/* bytes */
	bool		swap_encrypt;		/* seal swapped pages */
	char		swap_tier[UPVM_PATH_MAX]; /* "": none */
	int		pageout;		/* UPVM_PAGEOUT_* */
	uint64_t	threshold;		/* bytes */
	char		stats_path[UPVM_PATH_MAX]; /* "": none, "-": stderr */
	char		numa[UPVM_NUMA_NAME_MAX]; /* placement policy */
	char		node_budget[UPVM_PATH_MAX]; /* "": none */
	bool		numa_promote;
	bool		files;			/* preload: manage file maps */
	unsigned	inactive_pct;		/* of the budget, inactive */
	char		daemon[UPVM_PATH_MAX];	/* upvmd's socket, "": none */
	unsigned	flush_s;		/* write-back of shared file
						   regions every flush_s
						   seconds, 0: none */
};

/* upvm_config_default: fill in the defaults.  Never fails. */
void upvm_config_default(struct upvm_config *cfg);

/*
 * upvm_config_from_env: defaults, then UPVM_CONF, then UPVM_* variables.
 * => -EINVAL for an unknown UPVM_* variable or key, or a malformed or
 *    out-of-range value (cfg then holds the defaults).
 */
int upvm_config_from_env(struct upvm_config *cfg);

/*
 * upvm_parse_size: a size as the UPVM_* variables take it ("4096", "64K",
 * "512M", "2GiB", "1T": binary units) into bytes, for tools that take
 * sizes on their command line.  Logs nothing: the caller says what the
 * value was for.  => 0, -EINVAL (not a size), -ERANGE (too large).
 */
int upvm_parse_size(const char *s, uint64_t *bytes);

/*
 * upvm_init: start the runtime: open the userfaultfd, start the fault
 * threads.  cfg NULL means upvm_config_from_env().
 * => -EBUSY if already initialized, -EINVAL for a bad configuration,
 *    -EPERM/-ENOSYS if userfaultfd is unavailable.
 */
int upvm_init(const struct upvm_config *cfg);

/*
 * upvm_fini: stop the fault threads and release all metadata.  Regions
 * still mapped stay mapped and keep their contents, as ordinary anonymous
 * memory no longer managed by upvm.
 * => -ENXIO if not initialized.
 */
int upvm_fini(void);

/*
 * upvm_fork: fork(2) for a program that forks while upvm runs (under
 * `upvm run`, the program's fork() is this).  The child holds references
 * on the swap slots of the pages swapped out at the fork, taken by the
 * parent before it; through upvm_fork they are recorded as the child's
 * before the fork, so that they are given back when the fork fails and
 * when the child is killed before upvm runs in it.  Through a plain
 * fork() the child records them itself, and in those two cases they stay
 * allocated until the swap file is closed.
 * => as fork(2), errno included.
 */
pid_t upvm_fork(void);

/* upvm_map flags: initial advice (at most one) */
#define UPVM_MAP_SEQUENTIAL	0x1
#define UPVM_MAP_RANDOM		0x2

/*
 * upvm_map: map a new anonymous, private, read-write region of size bytes
 * (rounded up to pages) whose faults upvm serves.  Pages read as zeros
 * until written.
 * => 0 with *addrp set; -EINVAL (size 0, unknown flags), -ENOMEM (size past
 *    the 8 TiB region limit or the address space), -ENXIO (no upvm_init).
 */
int upvm_map(size_t size, int flags, void **addrp);

/*
 * upvm_unmap: unmap [addr, addr + len), which upvm must manage entirely
 * (any part of one or more regions; len is rounded up to pages).  Dirty
 * pages of shared file mappings are written back first.
 * => -EINVAL (addr not page aligned, len 0, range not wholly managed: then
 *    nothing is unmapped); a write-back's -errno (nothing unmapped).
 */
int upvm_unmap(void *addr, size_t len);

/* upvm_map_file flags: SHARED or PRIVATE, maybe RDONLY, at most one of
   SEQUENTIAL and RANDOM (upvm_map's) */
#define UPVM_MAP_SHARED		0x10	/* writes reach the file */
#define UPVM_MAP_PRIVATE	0x20	/* copy on write: the file is never
					   written; written pages page to swap */
#define UPVM_MAP_RDONLY		0x40	/* PROT_READ only: writes SIGSEGV */

/*
 * upvm_map_file: map len bytes of the file open on fd from offset off
 * (page aligned) into a new region whose pages upvm reads from the file
 * (O_DIRECT where possible: the page cache keeps no second copy), pages
 * out under the budget, and for SHARED writes back to the file (pageout,
 * upvm_sync, upvm_unmap, upvm_fini).  As mmap(2): a page wholly past the
 * end of the file raises SIGBUS when touched (a file grown later shows
 * its new pages), the part of the last page past the end reads zeros and
 * is never written.  fd may be closed afterwards.  Without a budget
 * writes cannot be tracked: upvm_sync then writes every resident page.
 * => 0 with *addrp; -EINVAL (flags, off not page aligned or negative, len
 *    0, off + len overflowing), -EBADF / -EACCES / -ENODEV (fd: not open,
 *    open without the access the flags need, not a regular file),
 *    -ENOMEM, -ENXIO (no upvm_init).  Each with one log line.
 */
int upvm_map_file(int fd, long long off, size_t len, int flags,
    void **addrp);

/* upvm_sync flags (msync's): exactly one of ASYNC and SYNC, maybe
   INVALIDATE */
#define UPVM_SYNC_ASYNC		0x1	/* write back, do not wait for the disk */
#define UPVM_SYNC_SYNC		0x2	/* write back and make it durable */
#define UPVM_SYNC_INVALIDATE	0x4	/* then drop the clean file pages: the
					   next access reads the file again */

/*
 * upvm_sync: write the dirty pages of the shared file mappings in
 * [addr, addr + len) (wholly managed) back to their files.
 * => 0; -EIO or the write's -errno (the pages stay dirty and resident,
 *    counted in io_errors); -EINVAL (flags, range).
 */
int upvm_sync(void *addr, size_t len, int flags);

/* upvm_advise advice: an access pattern, and/or a residency request */
#define UPVM_ADV_NORMAL		0x01	/* forget SEQUENTIAL/RANDOM */
#define UPVM_ADV_SEQUENTIAL	0x02	/* resolve far ahead of faults */
#define UPVM_ADV_RANDOM		0x04	/* resolve only the faulting page */
#define UPVM_ADV_WILLNEED	0x08	/* resolve every page of the range now */
#define UPVM_ADV_DONTNEED	0x10	/* drop the pages: they read as zeros */

/*
 * upvm_advise: apply advice to [addr, addr + len) (wholly managed).  At most
 * one of NORMAL/SEQUENTIAL/RANDOM and at most one of WILLNEED/DONTNEED.
 * => -EINVAL for bad or conflicting advice or an unmanaged range (nothing
 *    changed); -ENOMEM if WILLNEED could not get memory for every page
 *    (the pages it got stay resident).
 */
int upvm_advise(void *addr, size_t len, int advice);

/* histogram buckets: bucket i counts values v with 2^(i-1) <= v < 2^i
   (bucket 0: v < 1); the last bucket also holds everything larger */
#define UPVM_NUMA_MAX		64	/* nodes in the per-node stats */
#define UPVM_CLUSTER_BUCKETS	12	/* pages per resolution */
#define UPVM_LATENCY_BUCKETS	24	/* microseconds */

/*
 * Counters.  A resolution is counted once its last page is mapped, which
 * can be after the faulting thread already runs again.  faults counts every
 * event, including those for pages another event was resolving (woken);
 * latency_hist is the time from reading an event to mapping the chunk that
 * holds its page (the thread's wake-up), per resolution.
 */
struct upvm_stats {
	uint64_t	faults;		/* fault events read from the kernel */
	uint64_t	faults_resolved; /* events that mapped pages */
	uint64_t	faults_woken;	/* events for pages already resolved */
	uint64_t	faults_unmapped; /* events for ranges gone meanwhile */
	uint64_t	pages_resolved;	/* pages mapped by fault resolution */
	uint64_t	pages_prefetched; /* of those, by WILLNEED */
	uint64_t	copies;		/* UFFDIO_COPY calls that mapped them */
	uint64_t	clusters;	/* resolutions (one per claimed run) */
	uint64_t	cluster_hist[UPVM_CLUSTER_BUCKETS];
	uint64_t	latency_hist[UPVM_LATENCY_BUCKETS];
	uint64_t	retries;	/* resolutions retried (EAGAIN) */
	uint64_t	errors;		/* resolutions that failed (ENOMEM...) */
	uint64_t	regions;	/* regions mapped now */
	uint64_t	mapped_bytes;	/* bytes in those regions */
	uint64_t	resident_pages;	/* managed pages resident now */
	uint64_t	meta_bytes;	/* runtime metadata (map, amaps, anons) */
	unsigned	handlers;	/* fault threads running */
	uint64_t	features;	/* UFFD_FEATURE_* enabled */
	/* paging (with a budget) */
	uint64_t	budget_pages;	/* the budget, 0: none */
	uint64_t	resident_peak;	/* most pages resident at once */
	uint64_t	pageouts;	/* pages written to swap or files */
	uint64_t	pageout_ios;	/*   in this many writes */
	uint64_t	pageins;	/* pages read from swap or files */
	uint64_t	pagein_ios;	/*   in this many reads */
	uint64_t	file_reads;	/* of pageins, from mapped files */
	uint64_t	file_writes;	/* of pageouts, to shared mapped files
					   (write-back) */
	uint64_t	flushes;	/* write-back passes over the shared
					   file regions (flush) */
	uint64_t	clean_drops;	/* pages dropped: swap copy still valid */
	uint64_t	reactivations;	/* staged pages moved back, no I/O */
	uint64_t	clean_changed;	/* "clean" pages whose content check
					   found a write: written instead */
	uint64_t	rewritten;	/* of pageouts, pages written back
					   into the swap slots they were read
					   from (written since, move
					   protocol) */
	uint64_t	ra_probed;	/* pages read ahead by probes and left
					   unmapped (move protocol; see
					   "readahead" in the README) */
	uint64_t	ra_hits;	/*   of those, taken by a fault */
	unsigned	ra_window;	/* the readahead window the hits allow
					   now, pages */
	uint64_t	ra_ring;	/* positions of the probes' ring in
					   use now (their pages inactive, or
					   taken back since) */
	uint64_t	copied_out;	/* pages of mappings made read-only or
					   PROT_NONE paged out by a copy (move
					   protocol: UFFDIO_MOVE refuses them;
					   wp: PROT_NONE only) */
	int		pageout;	/* protocol in use: UPVM_PAGEOUT_MOVE
					   or _WP; AUTO when no budget */
	uint64_t	swap_full;	/* pageouts refused: swap full, kept */
	uint64_t	stalls;		/* faults let past the budget after the
					   pageout daemon took nothing out for
					   a second (pdaemon.h) */
	uint64_t	io_errors;	/* failed swap I/Os */
	uint64_t	poisoned;	/* pages that raise SIGBUS (lost data) */
	uint64_t	swap_used_pages; /* swap slots in use */
	uint64_t	reads_inflight;	/* pagein reads in flight now */
	uint64_t	reads_inflight_max; /* most pagein reads in flight at
					   once (all fault threads) */
	uint64_t	fault_helps;	/* times the fault threads beyond the
					   first were called to serve faults
					   (8 or more read at once) */
	uint64_t	writes_inflight; /* pageout writes in flight now */
	uint64_t	move_recounts;	/* UFFDIO_MOVEs that moved pages they
					   reported as not moved (a Linux 6.18
					   bug), counted from the page tables */
	/* the CPU time upvm's own threads took (since upvm_init), ns */
	uint64_t	cpu_fault_ns;	/* fault threads */
	uint64_t	cpu_pageout_ns;	/* the pageout daemon and the
					   flusher */
	uint64_t	cpu_io_ns;	/* the remote store's I/O threads */
	/* NUMA placement (numa other than none, or node budgets) */
	int		numa_nodes;	/* highest node + 1; 0: placement off */
	uint64_t	node_resident[UPVM_NUMA_MAX]; /* managed pages there */
	uint64_t	node_placed[UPVM_NUMA_MAX]; /* pages resolved there */
	uint64_t	node_demoted[UPVM_NUMA_MAX]; /* pages moved off it */
	uint64_t	node_promoted[UPVM_NUMA_MAX]; /* pages moved back to
							 it (numa_promote) */
	uint64_t	node_budget[UPVM_NUMA_MAX]; /* pages, 0: none */
};

/* upvm_stats: a snapshot of the counters.  => -ENXIO if not initialized */
int upvm_stats(struct upvm_stats *st);

/* upvm_stats_percentile: the p-th percentile (0..100) of a histogram, as
   the upper bound of the bucket it falls in; 0 if the histogram is empty */
uint64_t upvm_stats_percentile(const uint64_t *hist, int nbuckets, double p);

#ifdef __cplusplus
}
#endif

#endif /* UPVM_H */
