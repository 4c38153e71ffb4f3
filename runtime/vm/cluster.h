/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cluster.h: how many pages one fault resolves (pure policy, no locks of
 * its own, no I/O: tested without threads or userfaultfd).
 *
 * Each map entry keeps a few stream detectors.  A fault that lands where a
 * stream expected its next fault extends the stream and doubles its window
 * (up to cc_seq_max pages ahead of the fault); any other fault starts a
 * new stream (replacing the least recently used) and gets the aligned
 * cc_cluster-page block around the fault.  A stream not extended in the
 * entry's last CLUSTER_STREAM_AGE decisions is dead and matches nothing.
 * First touch runs down as well as up: a fill fault in the window just
 * below a stream's last resolution turns it into a descending stream,
 * whose window ends at the faulting page (sort(1) fills its array of line
 * records from the top of its buffer down; under pressure, where a new
 * guess is one page, each of those pages was a fault of its own).  Not
 * for pageins (CLUSTER_F_PAGEIN): sqlite3's B-tree pageins land just
 * below each other often enough that descending windows read 43 % more
 * pages for 14 % more reads, 20-45 % slower; their readahead is sized by
 * locality and hits.
 * Advice overrides: SEQUENTIAL starts every stream at the full window,
 * RANDOM resolves the faulting page alone (MADV_RANDOM: no read-around).
 *
 * Density: a random fault in an aligned super-block (CLUSTER_SUPER blocks,
 * at most cc_seq_max pages) where CLUSTER_DENSE_MIN blocks already hold
 * resident pages is filling that area densely, in random order; the
 * caller then widens the claim to the super-block (cluster_superblock), so
 * dense random first touch costs fewer faults while sparse random access
 * never resolves more than one block per fault.  Several streams per entry let T
 * threads each write their own part of one region sequentially.
 *
 * Readahead: a random pagein reads the aligned block of the entry's
 * readahead window around the fault (its pages with consecutive swap
 * slots, one read).  Reads of a mapped page never fault, so whether a page
 * read ahead was used cannot be seen; what can be seen is whether pageins
 * fall near each other.  A random pagein is near when it lands in one of
 * the CLUSTER_RA_HISTORY units of CLUSTER_RA_UNIT pages that the last
 * random pageins landed in; with n of the last 8 near, the window is the
 * power of two at or above 2n - 1, at most cc_readahead (as the kernel's
 * swap readahead sizes its window by its recent hits): uniform random
 * access over a large region reads single pages, access with locality (a
 * B-tree, a heap of objects allocated together) reads blocks.
 *
 * Readahead hits.  Locality says where pageins land, not whether the
 * pages read with them are used: a page read ahead is mapped, and reads
 * of a mapped page never fault.  So one random swap pagein in every few
 * (a probe, pdaemon.h) reads the whole cc_readahead block but maps only
 * the faulting page; the others wait unmapped as inactive pages, as the
 * kernel's swap readahead leaves its pages in the swap cache, and a fault
 * that takes one back is a hit.  Hits are counted by band: band b holds
 * the pages of the aligned 2^(b+1)-page block around the faulting page
 * that are not in its 2^b-page block (band 0 its buddy, band 1 the other
 * two of its 4-page block, band 2 the other four of its 8-page block).
 * Reading a 2^k window pays when each band below k is used often enough:
 * cluster_ra_cap is the widest such window, and caps the window that
 * locality chooses.  A probe reads one band past that cap (twice its
 * pages, at most cc_readahead): enough to see whether a wider window
 * would pay, and under uniform random access, where the cap is one page,
 * a probe reads two pages, not the whole block.
 * Where the hits leave no doubt (each band below a window counted and
 * used at least CLUSTER_RA_SURE_PCT percent: cluster_ra_sure), every
 * random pagein reads that window whatever locality says: sort merging
 * more runs than the locality history remembers reads each run's lines in
 * order, its pageins land far from each other, and the probes find
 * 99.9 % of the pages around them used (README, Paging: readahead).
 */
#ifndef UPVM_CLUSTER_H
#define UPVM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

#define CLUSTER_NSTREAM	4
#define CLUSTER_STREAM_AGE	64	/* decisions a stream lives unmatched */
#define CLUSTER_SUPER		16	/* blocks per super-block */
#define CLUSTER_DENSE_MIN	4	/* resident blocks that make it dense */
#define CLUSTER_RA_HISTORY	8	/* random pageins' units remembered */
#define CLUSTER_RA_UNIT		64	/* pages: pageins in one unit are near */
#define CLUSTER_RA_BANDS	6	/* bands of a readahead block, up to 64
					   pages */
#define CLUSTER_RA_HIT_PCT	40	/* a band pays when this percent of
					   its pages are hits (sqlite3 at half
					   its footprint: 30 and 60 slower) */
#define CLUSTER_RA_SURE_PCT	75	/* bands used this much: their window is
					   read whatever locality says */
#define CLUSTER_RA_SAMPLES	32	/* a band's pages counted before its
					   percent decides */
#define CLUSTER_RA_DECAY	256	/* a band's counts halve past this many
					   of its blocks: recent probes weigh */

/* cluster_choose() flags */
#define CLUSTER_F_SINGLE 0x1	/* a guess resolves the faulting page alone
				   (pressure): only streams grow */
#define CLUSTER_F_PAGEIN 0x2	/* a guess reads the aligned block of the
				   readahead window around the fault */

/* what cluster_choose() chose */
#define CLUSTER_ONE	0	/* the faulting page alone (RANDOM advice) */
#define CLUSTER_BLOCK	1	/* the aligned block around a random fault */
#define CLUSTER_STREAM	2	/* a window ahead of a sequential stream */
#define CLUSTER_DESCEND	3	/* a window below a descending stream */

struct cluster_config {
	int	cc_cluster;	/* pages around a random fault (power of 2) */
	int	cc_seq_max;	/* widest window ahead of a stream (pages) */
	int	cc_readahead;	/* pages around a random pagein (power of 2,
				   at most cc_seq_max) */
	int	cc_ra_sure;	/* a random pagein reads at least this many
				   (power of 2, at most cc_readahead; 0 or
				   1: locality decides alone) */
};

struct cluster_stream {
	vaddr_t	cs_next;	/* page the stream is expected to touch next
				   (ascending: the end of its last range) */
	vaddr_t	cs_low;		/* the start of its last range: a fault just
				   below it continues the stream downwards */
	int	cs_window;	/* pages resolved ahead at the last fault */
	uint32_t cs_used;	/* LRU stamp */
	bool	cs_down;	/* descending: cs_low is where it goes next */
};

struct cluster_state {
	struct cluster_stream	cl_streams[CLUSTER_NSTREAM];
	uint32_t		cl_clock;
	uint8_t			cl_ra_near;	/* the last 8 random pageins:
						   bit set = near */
	int			cl_ra_next;	/* oldest of cl_ra_units */
	vaddr_t			cl_ra_units[CLUSTER_RA_HISTORY]; /* unit
						   number + 1; 0: none */
};

/*
 * Readahead hit counts (see "readahead hits" above), shared by the
 * threads that probe and those that hit: relaxed atomics, halved now and
 * then, so a count lost to a race matters as little as an old one.
 */
struct cluster_ra_hits {
	_Atomic uint32_t rh_staged[CLUSTER_RA_BANDS];	/* pages probed */
	_Atomic uint32_t rh_hits[CLUSTER_RA_BANDS];	/* of those, taken
							   back by a fault */
};

/* cluster_ra_band: the band of page va in a probe that faulted at fva */
int cluster_ra_band(vaddr_t fva, vaddr_t va);

/* cluster_ra_staged: a probe left a page of band b unmapped */
void cluster_ra_staged(struct cluster_ra_hits *, int b);

/* cluster_ra_hit: a fault took back a probe's page of band b */
void cluster_ra_hit(struct cluster_ra_hits *, int b);

/*
 * cluster_ra_cap: the widest readahead window (a power of two, at most
 * `readahead` pages) whose bands are each hit at least CLUSTER_RA_HIT_PCT
 * percent; a band with fewer than CLUSTER_RA_SAMPLES pages counted passes.
 */
int cluster_ra_cap(const struct cluster_ra_hits *, int readahead);

/*
 * cluster_ra_sure: the widest window (a power of two, at most `readahead`
 * pages) whose bands each have CLUSTER_RA_SAMPLES pages counted and at
 * least CLUSTER_RA_SURE_PCT percent of them hit; 1 when none.
 */
int cluster_ra_sure(const struct cluster_ra_hits *, int readahead);

/*
 * cluster_ra_block: the aligned block of npages (a power of two) around
 * va, clamped to the entry [start, end): what a probe reads.
 */
void cluster_ra_block(int npages, vaddr_t start, vaddr_t end, vaddr_t va,
    vaddr_t *lop, vaddr_t *hip);

/*
 * cluster_choose: the range [*lop, *hip) to resolve for a fault at va in
 * an entry spanning [start, end) with the given advice, and update the
 * stream state.  The range contains va's page, lies inside the entry, and
 * is page aligned.  The caller trims it further to empty slots.
 * => caller serializes calls for one state (the entry's amap lock).
 * => returns CLUSTER_ONE, CLUSTER_BLOCK, CLUSTER_STREAM or CLUSTER_DESCEND
 *    (the range then ends at va's page).
 */
int cluster_choose(struct cluster_state *, const struct cluster_config *,
    int advice, int flags, vaddr_t start, vaddr_t end, vaddr_t va,
    vaddr_t *lop, vaddr_t *hip);

/*
 * cluster_superblock: the aligned super-block around va, clamped to the
 * entry [start, end): MIN(CLUSTER_SUPER * cc_cluster, cc_seq_max) pages.
 */
void cluster_superblock(const struct cluster_config *, vaddr_t start,
    vaddr_t end, vaddr_t va, vaddr_t *lop, vaddr_t *hip);

/*
 * cluster_advance: the stream expecting its next fault at `next` was read
 * ahead without a fault up to `to` (asynchronous readahead), or its range
 * was claimed only up to `to` (a resident page in the way): it expects
 * its next fault there now.  A descending stream's `next` is the start of
 * its range (`to` above it).  => whether a stream expected `next`.
 * => caller serializes calls for one state (the entry's amap lock).
 */
bool cluster_advance(struct cluster_state *, vaddr_t next, vaddr_t to);

/*
 * cluster_ahead: a fault at va found its page still being read.  If a
 * live ascending stream was read ahead past it, less than `depth` of its
 * windows beyond it (va lies in its asynchronous readahead, not yet
 * landed), the stream is due more: its next window starts at *nextp, *np
 * pages long.
 * This is the kernel's readahead marker, which starts the next
 * asynchronous read when the application reaches the last one: a window
 * that lands before the application gets there is mapped and never
 * faults, so a fault on one still in flight is the sign that the
 * application caught up with the readahead.
 * => whether such a stream exists; the caller reads ahead and calls
 *    cluster_advance.
 * => caller serializes calls for one state (the entry's amap lock).
 */
bool cluster_ahead(const struct cluster_state *, vaddr_t va, int depth,
    vaddr_t *nextp, int *np);

/* cluster_reset: forget every stream (the entry's pages were dropped). */
void cluster_reset(struct cluster_state *);

#endif /* UPVM_CLUSTER_H */
