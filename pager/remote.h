/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * remote.h: the remote store of the swap pager: swap slots kept in the
 * memory of memcached servers (far memory), sealed (seal.h).  Inside
 * pager/ only; the swap pager (swap.c) owns the slots and calls
 * remote_io for the I/O of the slots that live remotely.
 *
 * Where a page goes.  Slots are grouped by REMOTE_GROUP (remote_group),
 * and a group's servers are ranked by rendezvous hashing (the highest
 * hash of group and server wins; ketama's property that a server added or
 * lost moves only its own share, without a ring).  A write stores each value
 * (below) on the first `replicas` servers of its group's ranking that
 * answer; a read asks them in rank order until one returns a value whose
 * pages open (seal_open), so a server that died, restarted empty, evicted
 * the value or returns a stale or forged one costs a round trip to the
 * next, never wrong data.
 * A page no server returns is lost: the read says so (pr_lost) and the
 * page raises SIGBUS.  One cluster of a group costs one pipelined round
 * trip per server (mcache.h), not one per page.
 *
 * Values hold up to REMOTE_VPAGES pages (64 KiB: far below memcached's
 * 1 MiB item limit), each page sealed on its own, keyed "u<instance
 * id>:<first slot>.<first generation>".  A value is the run of a write's
 * pages that the swap gave consecutive generations from a multiple of
 * REMOTE_VPAGES (swp_seal_out; a run never leaves its group), so a slot's
 * generation alone says which value holds its page and where (see
 * remote_value_of): no table of values.  One value instead of sixteen
 * costs the server a sixteenth of the keys to hash, items to link and
 * replies to send, and the workers as much parsing; a read that wants one
 * page of a value still takes the whole value from the server (the rest
 * is dropped unopened).  A value's last page to go (swap_free: no other
 * slot of it still holds its page) queues the delete of the value
 * (remote_forget; sent in batches, "noreply", to every server), so the
 * store holds about the swap's live slots, not the process's whole
 * history; the generation in the key keeps a late delete from taking a
 * newer value of a reused slot.  A process killed before it could delete
 * leaves sealed values nobody can read, which memcached's LRU evicts
 * first.
 *
 * Threads.  Network I/O is done by REMOTE_WORKERS threads of the store,
 * each with its own connection to every server.  A request from a
 * queue's thread (a fault thread, the pageout daemon) is handed to them
 * and its completion is posted back into that thread's ring (ring_post:
 * IORING_OP_MSG_RING), so it arrives with the thread's disk completions
 * through pager_complete, like any I/O.  A request with no queue waits.
 *
 * Failures.  A server that refuses a connection or does not answer within
 * the time-out (one reconnect first: a restarted server) is marked down
 * for a back-off (1 s, doubling to 16 s) and skipped; one log line when
 * it goes down, one when it answers a request again (remote_mark_up: an
 * accepted connection is no answer).  A write counts only when a
 * server answered STORED for every page (mc_set_many), so a page is never
 * dropped from memory before a server holds it.  memcached forgets under
 * memory pressure by design (LRU eviction); a store's reply cannot say
 * that it pushed older pages out, so every second a worker reads each
 * server's "evictions" counter: one whose count grew is full (one log
 * line, counted) and gets no more stores until an eighth of its memory
 * is free and it stopped evicting.  Pages it evicted before that raise
 * SIGBUS unless a replica holds them; with no server left to take a
 * store, writes fail and the pages stay resident, as with a full disk.
 *
 * Locks protecting struct members:
 *	I  immutable after remote_create   l  rs_lock   a  atomic
 *	w  the worker that owns it
 */
#ifndef UPVM_REMOTE_H
#define UPVM_REMOTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "pager.h"

struct remote;
struct ring;
struct seal;

#define REMOTE_GROUP	64	/* slots placed together */
#define REMOTE_VPAGES	16	/* pages of a value, at most */
#define REMOTE_MAXSRV	16

/*
 * remote_group: slot's group.  Slots count from 1, so groups align with
 * the swap's runs (the first is slots 1..64, file offsets 0..256 KiB).
 */
static inline uint64_t
remote_group(uint64_t slot)
{
	return (slot - 1) / REMOTE_GROUP;
}

/*
 * remote_value_of: the value that holds slot's page of generation gen
 * (gen != 0): its first slot and that slot's generation.  The page is
 * the value's page gen % REMOTE_VPAGES.
 */
static inline void
remote_value_of(uint64_t slot, uint64_t gen, uint64_t *vslot, uint64_t *vgen)
{
	*vslot = slot - gen % REMOTE_VPAGES;
	*vgen = gen - gen % REMOTE_VPAGES;
}

/* counters: remote_stats */
struct remote_stats {
	uint64_t	rs_puts;	/* pages confirmed stored (>= 1 copy) */
	uint64_t	rs_gets;	/* pages read and opened */
	uint64_t	rs_failovers;	/* pages read from a later-ranked
					   server (the first missed or failed) */
	uint64_t	rs_misses;	/* a server did not have a page */
	uint64_t	rs_badseal;	/* values that failed authentication
					   (stale, forged, or another's) */
	uint64_t	rs_lost;	/* pages no server returned */
	uint64_t	rs_put_fail;	/* pages no server stored */
	uint64_t	rs_server_down;	/* times a server was marked down */
	uint64_t	rs_evicting;	/* times a server was found evicting */
	uint64_t	rs_deleted;	/* values deleted (slots freed) */
};

/*
 * remote_create: parse url "memcached://host:port[,host:port...][?opts]"
 * (opts: replicas=N (1..servers), timeout_ms=T), check that at least one
 * server answers, start the workers.
 * => 0, or -errno with one log line saying what was wrong and what to do
 *    (-EINVAL: the URL; -EHOSTUNREACH: no server answers).
 */
int remote_create(const char *url, const struct seal *, struct remote **out);
void remote_destroy(struct remote *);

/* remote_is_url: whether s names a remote store (memcached://) */
bool remote_is_url(const char *s);

/*
 * remote_io: the transfer of req's pages (slot atop(pr_off) on; gen[s] is
 * slot s's generation, set by the caller before a write, expected by a
 * read).  With a ring, queued: -EINPROGRESS, or -EBUSY (no room: the
 * ring is full).  Without, done: 0 or -errno.  The completion's result
 * is the byte count or -errno; a read that lost pages sets pr_xfer to the
 * bytes read and opened before the first lost page and pr_lost to 1.
 */
int remote_io(struct remote *, struct ring *, struct pager_req *, bool write,
    const uint64_t *gen);

/*
 * remote_forget: the value that begins at slot with generation gen
 * (remote_value_of) is no longer needed.
 * => any thread; swap_free holds the swap's lock (it comes before
 *    rs_lock).  Best effort: dropped when too many are pending.
 */
void remote_forget(struct remote *, uint64_t slot, uint64_t gen);

/* remote_fork_child: the child's store: new workers and connections */
void remote_fork_child(struct remote *);

void remote_stats(struct remote *, struct remote_stats *out);

/* remote_cpu_ns: CPU time its worker threads took */
uint64_t remote_cpu_ns(struct remote *);

/* remote_describe: the servers and replicas, for messages */
const char *remote_describe(const struct remote *);

#endif /* UPVM_REMOTE_H */
