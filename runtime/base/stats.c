/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stats.c: histogram buckets, snapshots and percentiles.
 */
#include <time.h>

#include "stats.h"
#include "vm.h"

int
stats_bucket(uint64_t v, int nbuckets)
{
	int b = v == 0 ? 0 : 64 - __builtin_clzll(v);

	return MIN(b, nbuckets - 1);
}

#define LOAD(f)	atomic_load_explicit(&st->f, memory_order_relaxed)

void
stats_snapshot(struct vm_stats *st, struct upvm_stats *out)
{
	out->faults = LOAD(st_faults);
	out->faults_resolved = LOAD(st_faults_resolved);
	out->faults_woken = LOAD(st_faults_woken);
	out->faults_unmapped = LOAD(st_faults_unmapped);
	out->pages_resolved = LOAD(st_pages_resolved);
	out->copies = LOAD(st_copies);
	out->pages_prefetched = LOAD(st_pages_prefetched);
	out->clusters = LOAD(st_clusters);
	for (int i = 0; i < UPVM_CLUSTER_BUCKETS; i++)
		out->cluster_hist[i] = LOAD(st_cluster_hist[i]);
	for (int i = 0; i < UPVM_LATENCY_BUCKETS; i++)
		out->latency_hist[i] = LOAD(st_latency_hist[i]);
	out->retries = LOAD(st_retries);
	out->errors = LOAD(st_errors);
	out->pageouts = LOAD(st_pageouts);
	out->pageout_ios = LOAD(st_pageout_ios);
	out->pageins = LOAD(st_pageins);
	out->file_reads = LOAD(st_file_reads);
	out->file_writes = LOAD(st_file_writes);
	out->flushes = LOAD(st_flushes);
	out->pagein_ios = LOAD(st_pagein_ios);
	out->clean_drops = LOAD(st_clean_drops);
	out->reactivations = LOAD(st_reactivations);
	out->clean_changed = LOAD(st_clean_changed);
	out->rewritten = LOAD(st_rewritten);
	out->ra_probed = LOAD(st_ra_probed);
	out->ra_hits = LOAD(st_ra_hits);
	out->copied_out = LOAD(st_copied_out);
	out->swap_full = LOAD(st_swap_full);
	out->stalls = LOAD(st_stalls);
	out->io_errors = LOAD(st_io_errors);
	out->poisoned = LOAD(st_poisoned);
	out->reads_inflight_max = LOAD(st_reads_inflight_max);
	out->fault_helps = LOAD(st_fault_helps);
}

void
stats_max(atomic_uint_least64_t *m, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);

	while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v,
	    memory_order_relaxed, memory_order_relaxed))
		;
}

uint64_t
stats_thread_cpu_ns(pthread_t t)
{
	struct timespec ts;
	clockid_t cid;

	if (pthread_getcpuclockid(t, &cid) != 0 ||
	    clock_gettime(cid, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

UPVM_API uint64_t
upvm_stats_percentile(const uint64_t *hist, int nbuckets, double p)
{
	uint64_t total = 0, seen = 0, want;

	for (int i = 0; i < nbuckets; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	p = p < 0 ? 0 : p > 100 ? 100 : p;
	want = (uint64_t)((double)total * p / 100.0 + 0.5);
	want = want == 0 ? 1 : want;
	for (int i = 0; i < nbuckets; i++) {
		seen += hist[i];
		if (seen >= want)
			return (uint64_t)1 << i;
	}
	return (uint64_t)1 << (nbuckets - 1);
}
