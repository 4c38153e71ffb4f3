/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stats.h: counters of one managed address space.
 *
 * Every field is a relaxed atomic: counters are statistics, not
 * synchronization, and are summed by readers without a lock.
 * Histograms use the power-of-two buckets documented in upvm.h.
 */
#ifndef UPVM_STATS_H
#define UPVM_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "upvm.h"

/* stats_now_ns: CLOCK_MONOTONIC in nanoseconds (latencies, deadlines) */
static inline uint64_t
stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* stats_now_ms: the same, in milliseconds (time-outs) */
static inline int64_t
stats_now_ms(void)
{
	return (int64_t)(stats_now_ns() / 1000000);
}

struct vm_stats {
	atomic_uint_least64_t st_faults;
	atomic_uint_least64_t st_faults_resolved;
	atomic_uint_least64_t st_faults_woken;
	atomic_uint_least64_t st_faults_unmapped;
	atomic_uint_least64_t st_pages_resolved;
	atomic_uint_least64_t st_pages_prefetched;
	atomic_uint_least64_t st_copies;
	atomic_uint_least64_t st_clusters;
	atomic_uint_least64_t st_cluster_hist[UPVM_CLUSTER_BUCKETS];
	atomic_uint_least64_t st_latency_hist[UPVM_LATENCY_BUCKETS];
	atomic_uint_least64_t st_retries;
	atomic_uint_least64_t st_errors;
	atomic_uint_least64_t st_pageouts;
	atomic_uint_least64_t st_pageout_ios;
	atomic_uint_least64_t st_pageins;
	atomic_uint_least64_t st_file_reads;
	atomic_uint_least64_t st_file_writes;
	atomic_uint_least64_t st_flushes;
	atomic_uint_least64_t st_pagein_ios;
	atomic_uint_least64_t st_clean_drops;
	atomic_uint_least64_t st_reactivations;
	atomic_uint_least64_t st_clean_changed;
	atomic_uint_least64_t st_rewritten;
	atomic_uint_least64_t st_ra_probed;
	atomic_uint_least64_t st_ra_hits;
	atomic_uint_least64_t st_copied_out;
	atomic_uint_least64_t st_swap_full;
	atomic_uint_least64_t st_stalls;
	atomic_uint_least64_t st_io_errors;
	atomic_uint_least64_t st_poisoned;
	atomic_uint_least64_t st_reads_inflight_max;
	atomic_uint_least64_t st_fault_helps;
};

#define STAT_ADD(st, f, n)						\
	atomic_fetch_add_explicit(&(st)->f, (n), memory_order_relaxed)
#define STAT_INC(st, f)		STAT_ADD(st, f, 1)

/* stats_bucket: the histogram bucket of value v (see upvm.h) */
int stats_bucket(uint64_t v, int nbuckets);

/* stats_max: raise a high-water mark to v */
void stats_max(atomic_uint_least64_t *, uint64_t v);

/* stats_thread_cpu_ns: the CPU time a running thread took, 0 unknown */
#include <pthread.h>
uint64_t stats_thread_cpu_ns(pthread_t);

/* stats_snapshot: copy the counters into the public struct */
void stats_snapshot(struct vm_stats *, struct upvm_stats *);

#endif /* UPVM_STATS_H */
