/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vmspace.h: one managed address space: its map, its pmap (userfaultfd),
 * its fault engine and counters.  In-process mode has one, the global
 * upvm_vs of upvm.c, in static storage (never managed memory).
 *
 * Locks protecting struct members in this file:
 *	I  immutable while the vmspace is initialized   a  atomic
 */
#ifndef UPVM_VMSPACE_H
#define UPVM_VMSPACE_H

#include "cluster.h"
#include "fault.h"
#include "map.h"
#include "pmap.h"
#include "stats.h"

struct pdaemon;
struct swap;

struct vmspace {
	struct vm_map		vs_map;
	struct pmap		vs_pmap;	/* [I] */
	struct cluster_config	vs_cc;		/* [I] */
	struct fault_engine	vs_fault;
	struct vm_stats		vs_stats;	/* [a] */
	atomic_long		vs_resident;	/* [a] managed pages resident
						   or claimed to become so */
	struct swap		*vs_swap;	/* [I] NULL: no budget */
	struct pdaemon		*vs_pd;		/* [I] NULL: no budget */
	int			vs_regmodes;	/* [I] PMAP_REG_* for regions */
	int			vs_pageout;	/* [I] UPVM_PAGEOUT_MOVE or _WP
						   with a budget, else AUTO */
	atomic_int		vs_reads_inflight; /* [a] pagein reads waited on */
};

#endif /* UPVM_VMSPACE_H */
