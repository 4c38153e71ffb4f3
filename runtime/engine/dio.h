/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dio.h: direct reads into managed memory, which the wp protocol cannot
 * see.
 *
 * An O_DIRECT read pins the buffer's pages (GUP) and the device writes
 * them later, past the page tables: a page pinned before the pageout
 * daemon write-protected it takes the data without a WP fault, so the
 * daemon would write its old contents out and drop it, and the data the
 * read brought would be lost (the move protocol is safe: UFFDIO_MOVE
 * refuses pinned pages).  So the reads the preload sees (read, pread,
 * readv, preadv, preadv2 on an O_DIRECT descriptor) announce their
 * buffer here for their duration, and pd_finish_wp keeps resident, dirty,
 * every run that such a read overlapped since the daemon's last look
 * before write-protecting it (dio_now): one still running, or one that
 * ended since (its DMA may have landed after the write read the page).
 * Reads the preload does not see (io_uring, aio, a raw syscall) are not
 * covered (README).
 *
 * All lock-free: a read claims a free active slot (or counts as an
 * overflow, which makes every run overlapped), and on its end logs its
 * range in a ring under a new sequence number before freeing the slot.
 * A look further back than the ring holds answers "overlapped".
 */
#ifndef UPVM_DIO_H
#define UPVM_DIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

#define DIO_ACTIVE	64	/* direct reads in flight tracked one by one */
#define DIO_ENDED	256	/* ended reads remembered */

struct dio_range {
	atomic_ulong	dr_seq;		/* ended: its sequence number */
	atomic_ulong	dr_start;	/* [start, end); active: 0 when free */
	atomic_ulong	dr_end;
};

struct dio_table {
	atomic_ulong	  dt_seq;	/* reads ended so far */
	atomic_long	  dt_overflow;	/* reads in flight without a slot */
	struct dio_range  dt_active[DIO_ACTIVE];
	struct dio_range  dt_ended[DIO_ENDED];	/* by seq % DIO_ENDED */
};

/* dio_begin: a direct read into [start, end) starts.  => its slot, or -1
   (an overflow) */
int dio_begin(struct dio_table *, vaddr_t start, vaddr_t end);

/* dio_end: the read of slot `slot` (dio_begin's answer) returned */
void dio_end(struct dio_table *, int slot, vaddr_t start, vaddr_t end);

/* dio_now: the sequence to give dio_overlapped later; take it before the
   pages are write-protected */
uint64_t dio_now(struct dio_table *);

/* dio_overlapped: a direct read into [start, end) is in flight, or one
   ended after `since` */
bool dio_overlapped(struct dio_table *, uint64_t since, vaddr_t start,
    vaddr_t end);

#endif /* UPVM_DIO_H */
