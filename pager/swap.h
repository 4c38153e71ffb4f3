/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swap.h: the swap pager: anonymous pages in a private swap file.
 *
 * The file is created private (O_TMPFILE, or created and unlinked at once,
 * mode 0600) in a directory, or is a given path created new; it is grown
 * with fallocate() in SWAP_GROW steps as slots are handed out, up to a cap,
 * and opened O_DIRECT where the filesystem allows it (else buffered, with
 * the written range dropped from the page cache).
 *
 * Slots are page sized and numbered from 1 (0 means "no slot").  The slot
 * allocator hands out contiguous runs (next fit over a bitmap), so that a
 * cluster is written and read back with one I/O.  Each slot has a reference
 * count (an anon shared copy-on-write, a child after fork); the last
 * swap_free() releases it.  The bitmap, the counts and their lock live in
 * one MAP_SHARED anonymous area with a process-shared mutex, so that after
 * fork() parent and child allocate from, and count references in, the same
 * state and never overwrite each other's data.  Each process records which
 * references are its own (swaphold.h), so that those of a process gone
 * without swap_destroy (exited, killed, exec'd) are given back
 * (swap_reap).
 *
 * I/O goes through rings (uring.h) owned by the calling threads:
 * swap_read/swap_write queue one contiguous run; swap_*_sync do a whole
 * transfer and wait.  The struct swap embeds struct pager first, so it is
 * also the "swap" backend behind pager_ops (offsets = slot * PAGE_SIZE).
 *
 * Locks protecting struct members in this file:
 *	I  immutable after swap_create()   s  sw_shared->ss_lock
 *	a  atomic                          b  sw_bounce_lock
 *	p  immutable in a process after swap_create() or swap_fork_child()
 *	f  the fork handlers' (the caller's lock stops every other call)
 * Invariants (swap_check()): a slot is allocated in the bitmap iff its
 * count is > 0; ss_used == allocated slots; ss_used <= sw_maxslots;
 * the file is at least as large as the highest allocated slot.
 */
#ifndef UPVM_SWAP_H
#define UPVM_SWAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager.h"

struct ring;

#define SWAP_GROW	((uint64_t)64 << 20)	/* fallocate step, bytes */

struct swap_config {
	const char	*sc_path;	/* directory, or a file path that must
					   not exist yet; NULL: $TMPDIR, else
					   /var/tmp */
	uint64_t	 sc_max;	/* cap in bytes; 0: 64 GiB */
	bool		 sc_nodirect;	/* never use O_DIRECT */
	bool		 sc_encrypt;	/* seal pages in the file (seal.h) */
	const char	*sc_remote;	/* memcached://... (remote.h): slots
					   live there, sealed; no file */
	bool		 sc_file_tier;	/* with sc_remote: a file too, in
					   sc_path, each tier sc_max */
	bool		 sc_remote_first; /* the remote tier fills first */
};

struct swap_shared;			/* swap.c: bitmap, counts, lock */
struct remote;
struct seal;

struct swap {
	struct pager	 sw_pager;	/* first: the pager backend */
	int		 sw_fd;		/* [I] */
	bool		 sw_direct;	/* [I] opened O_DIRECT */
	uint64_t	 sw_maxslots;	/* [I] cap, in slots (all tiers) */
	uint64_t	 sw_flo, sw_fhi;	/* [I] the file's slots - 1:
					   [lo, hi) (empty: no file) */
	uint64_t	 sw_rlo, sw_rhi;	/* [I] the remote store's */
	char		 sw_where[256];	/* [I] for messages */
	struct swap_shared *sw_shared;	/* [I] MAP_SHARED state */
	int		 sw_holder;	/* [p] this process's entry in the
					   shared table of holders
					   (swaphold.h), or SWH_NONE */
	pid_t		 sw_holder_pid;	/* [p] the process it is for: a fork
					   child before swap_fork_child
					   records nothing */
	int		 sw_child;	/* [f] the entry pending for the child
					   of the fork being prepared
					   (swap_fork_pend), or SWH_NONE */
	uint64_t	 sw_child_nonce; /* [f] its swh_pend nonce */
	uint64_t	 sw_hashkey;	/* [I] page_hash() key: random */
	atomic_int	 sw_fail[2];	/* [a] fault injection: the Nth next
					   read [0] / write [1] fails; 0 off */
	atomic_int	 sw_gate[2];	/* [a] reads [0] / writes [1] wait for
					   this eventfd, -1: none */
	int		 sw_gatefd[2];	/* [I] swap_inject_gate's, or -1 */
	struct seal	*sw_seal;	/* [I] pages sealed, or NULL */
	struct remote	*sw_remote;	/* [I] the remote store, or NULL:
					   the file (sw_fd) */
	/* a sealed file's write bounces (SWAP_BOUNCE_PAGES each) kept for
	   the next writes, SWAP_BOUNCE_KEEP at most: a fresh mapping per
	   write cost more than its sealing (faults, zeroing, munmap's TLB
	   shootdowns) */
	pthread_mutex_t	 sw_bounce_lock;
	void		*sw_bounce[16];	/* [b] */
	int		 sw_nbounce;	/* [b] */
};

/*
 * swap_create: create the swap file.
 * => 0, or -errno with one log line saying what failed and what to do
 *    (-ENOENT/-EACCES: the directory; -EINVAL: a cap below one page).
 */
int swap_create(const struct swap_config *, struct swap **out);
void swap_destroy(struct swap *);

/*
 * A fork, in the fork handlers (swaphold.h has the why):
 * swap_fork_pend: in the parent, before the references for the child
 * are taken (swap_ref), an entry pending for the child, where swap_ref
 * records them; only for a fork whose outcome the caller will pass to
 * swap_fork_done.  => false when the table is full (the child records
 * them itself then, as without it).
 * swap_fork_parent: in the parent after fork: a token for the pending
 * entry, handed to the caller for swap_fork_done (0: none), and the
 * entry forgotten here (another fork may be prepared before that).
 * swap_fork_child: the child of fork's own I/O threads and connections
 * (a remote store), and its own record of the references it holds,
 * before any other swap call there.  => true when the references its
 * parent took for it are recorded as its own already (it adopted the
 * pending entry); false: the child records each with swap_hold.
 * swap_fork_done: in the parent, once fork returned pid (or -errno):
 * the token's entry becomes the child's if it has not adopted it yet,
 * or, for a fork that failed, its references go back.
 */
bool swap_fork_pend(struct swap *);
uint64_t swap_fork_parent(struct swap *);
bool swap_fork_child(struct swap *);
void swap_fork_done(struct swap *, uint64_t token, pid_t pid);

/*
 * swap_alloc: a run of n contiguous free slots, each with count 1.
 * => 0 with *slotp the first, -ENOSPC when the cap or the disk is full
 *    (nothing allocated), -EINVAL for n <= 0.
 */
int swap_alloc(struct swap *, int n, uint64_t *slotp);

/*
 * swap_alloc_now: swap_alloc, but never growing the file: -EAGAIN
 * (nothing allocated) where the run would need it grown, so that a
 * caller holding a lock waits on no I/O (the pageout daemon's early
 * writes).
 */
int swap_alloc_now(struct swap *, int n, uint64_t *slotp);

/*
 * swap_ref: one more reference on n slots, for a child about to be
 * forked: recorded in the entry pending for it (swap_fork_pend), else the
 * child records it as its own with swap_hold (until then, and if the
 * fork fails, it is nobody's and stays allocated until the file is
 * closed).
 * swap_hold: the calling fork child holds the references its parent took
 * for it on n slots (after swap_fork_child).
 * swap_free: the calling process gives back one of its references on n
 * slots; a slot's last reference frees it.
 */
void swap_ref(struct swap *, uint64_t slot, int n);
void swap_hold(struct swap *, uint64_t slot, int n);
void swap_free(struct swap *, uint64_t slot, int n);

/*
 * swap_reap: give back the references held by processes of the family
 * that are gone: exited, killed, or exec'd into another image, without
 * upvm_fini (swaphold.h).  swap_alloc calls it, at most once a second,
 * before the file grows and when the swap is full.
 * => takes and drops ss_lock; reads /proc without it.
 * => the number of processes whose references were given back.
 */
int swap_reap(struct swap *);
unsigned swap_count(struct swap *, uint64_t slot);

/*
 * swap_own_run: slots [slot, slot + n) are in the swap file's tier (not
 * the remote store, whose values hold pages in groups) and each has one
 * reference, so a write of them changes no other page: the caller may
 * write new contents into them in place (pageout of pages written since
 * their pagein, as the kernel writes a swap-cache page back to its slot).
 */
bool swap_own_run(struct swap *, uint64_t slot, int n);

/*
 * swap_set_hash / swap_hash: the page_hash() (key sw_hashkey) of a slot's
 * data.  The process that allocated the slot sets it before it shares
 * the slot (the hash lives in the fork-shared state); it is read-only
 * while the slot is held.  No locks.
 */
void swap_set_hash(struct swap *, uint64_t slot, uint64_t hash);
uint64_t swap_hash(struct swap *, uint64_t slot);

/* swap_cpu_ns: CPU time of the swap's own threads (a remote store's) */
uint64_t swap_cpu_ns(struct swap *);

/* slots in use, and the cap */
uint64_t swap_used(struct swap *);

/*
 * swap_read / swap_write: queue the I/O of n pages at slot on `ring`.
 * => 0 queued (the completion carries tag), or -errno (-EBUSY: ring full).
 */
int swap_read(struct swap *, struct ring *, uint64_t slot, void *buf, int n,
    uint64_t tag);
int swap_write(struct swap *, struct ring *, uint64_t slot, const void *buf,
    int n, uint64_t tag);

/*
 * swap_read_sync / swap_write_sync: the whole transfer, waited for (short
 * transfers continued).  => 0, or -EIO / -errno.
 */
int swap_read_sync(struct swap *, struct ring *, uint64_t slot, void *buf,
    int n);
int swap_write_sync(struct swap *, struct ring *, uint64_t slot,
    const void *buf, int n);

/*
 * swap_inject_failure: make the nth next read (write: write) fail with
 * -EIO before it reaches the disk, as a failing disk would: the tests'
 * way to reach the error paths of the real pager (nth 0 disarms).
 */
void swap_inject_failure(struct swap *, bool write, int nth);

/*
 * swap_inject_gate: hold (or let go) the reads or writes queued from now
 * on until the gate is released: each waits in the kernel (io_uring)
 * for the gate's eventfd, like a disk that does not answer.  The tests'
 * way to catch an I/O in flight.  => 0 or -errno.
 */
int swap_inject_gate(struct swap *, bool write, bool hold);

/* swap_check: 0 if the invariants hold, else -EINVAL (logged) */
int swap_check(struct swap *);

extern const struct pager_ops swap_pager_ops;

#endif /* UPVM_SWAP_H */
