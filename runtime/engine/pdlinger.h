/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pdlinger.h: inactive page records, private to the pageout daemon
 * (pdaemon.c) and its readahead probes (pdprobe.c).
 *
 * The staging area holds pdd_nstage pages of the daemon's ring, then
 * pdd_nprobe pages of probes.  Every staging page has a record; an
 * inactive anon (ANON_STAGED) names its page's index in its flags, so a
 * fault (pd_reactivate) or an unmap (pd_forget) finds the record whichever
 * part of the area it is in.  The ring's records are the daemon's; the
 * probes' are written under pdd_probe_lock.  Either way a record's
 * pl_anon is read and cleared under its amap's lock.
 */
#ifndef UPVM_PDLINGER_H
#define UPVM_PDLINGER_H

#include <stdbool.h>

#include "vm.h"

struct amap;
struct anon;
struct pdaemon;

struct pd_linger {
	struct amap	*pl_amap;	/* held; NULL: no page here (read by
					   faults under the amap lock) */
	struct anon	*pl_anon;	/* [amap lock] held; NULL: taken back */
	int		 pl_slot;
	bool		 pl_fresh;	/* written by its pageout: the pager
					   keeps no hash of it yet */
	signed char	 pl_band;	/* a probe's page: its band
					   (cluster.h); -1: the ring's */
	unsigned long	 pl_taken;	/* a probe's page: pdd_taken when it
					   was staged */
};

/* pd_stage_page: the staging page of index at */
char *pd_stage_page(struct pdaemon *, long at);

/* pd_stage_drop_at: free len bytes of staging pages at `at` */
void pd_stage_drop_at(char *at, vsize_t len);

/*
 * pd_linger_let_go: record `at` goes: its page, if still inactive,
 * becomes swapped (its copy is valid); if it left its slot meanwhile,
 * the record's hold was the last.  Its staging page is the caller's to
 * free.  => map read-locked; takes and drops the amap lock.
 * => 1 if the page was inactive (it leaves memory now), else 0.
 */
int pd_linger_let_go(struct pdaemon *, long at);

/* pd_probe_init: the probes' fields, before the staging area exists */
void pd_probe_init(struct pdaemon *);

/*
 * pd_probe_age: the probes' pages that stayed while the daemon took a
 * budget's worth of pages out go (as old as any page in memory can be),
 * so that they leave when probes stop coming.  => map read-locked.
 * => pages freed.  (pdprobe.c)
 */
long pd_probe_age(struct pdaemon *);

/* pd_probe_flush: every probe's page goes, and no probe stages any more
   (the daemon stops).  => map read-locked.  (pdprobe.c) */
void pd_probe_flush(struct pdaemon *);

#endif /* UPVM_PDLINGER_H */
