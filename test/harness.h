/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * harness.h: helpers shared by the Criterion suites.
 *
 * Page patterns: every 8-byte word of page `index` written in generation
 * `gen` holds a value derived from (index, gen, word), so a page that came
 * back from the wrong place, from an older generation, or as zeros is
 * caught.  Checks cover every word of every page.
 */
#ifndef UPVM_TEST_HARNESS_H
#define UPVM_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upvm.h"

/* the value of word w of page index in generation gen (never 0) */
uint64_t test_word(size_t index, uint64_t gen, size_t w);

/* fill / check pages [0, npages) of buf as pages first..first+npages */
void test_pattern_fill(void *buf, size_t npages, size_t first, uint64_t gen);
/* => index (relative to buf) of the first bad page, or -1 */
long test_pattern_bad(const void *buf, size_t npages, size_t first,
    uint64_t gen);
/* => index of the first page that is not all zeros, or -1 */
long test_zero_bad(const void *buf, size_t npages);

/* reading the byte at addr raises SIGBUS (caught; the test goes on) */
bool test_raises_sigbus(volatile const char *addr);

/* every one of the n bytes at p equals c */
bool test_all_bytes(const void *p, int c, size_t n);

/* process pid runs the program `name` (/proc/PID/comm) */
bool test_proc_runs(int pid, const char *name);

/*
 * The log, captured: test_log_capture() sends upvm's log lines to a pipe
 * for the rest of the test; test_log_read() returns what came since the
 * last read; test_expect_one_line() asserts that exactly one whole line
 * came, naming `name`; test_expect_no_log() that none did.
 */
void test_log_capture(void);
const char *test_log_read(void);
void test_expect_one_line(const char *what, const char *name);
void test_expect_no_log(const char *what);
/* the text the last test_log_read() or test_expect_*() saw */
const char *test_log_last(void);

struct ring;
/* a ring of `depth`, or skip the test where io_uring is unavailable */
struct ring *test_ring(unsigned depth);

/* a snapshot of upvm's counters (asserts that upvm runs) */
struct upvm_stats test_stats(void);

/*
 * test_hostmm_start: upvm with a budget, mappings of 1 MiB and more
 * managed, and hostmm's system calls enabled (as under the preload).
 * test_hostmm_anon: a private anonymous mapping through hostmm_mmap.
 */
void test_hostmm_start(size_t budget);
char *test_hostmm_anon(size_t len, int prot, int flags);
/*
 * test_paged_region: npages of it written with generation 1 (pattern
 * indices from 0): under a smaller budget, mostly in swap now (asserts
 * that pages went out).  test_swapped_page: the first page in [from, to)
 * of p that is not resident (mincore; 256 pages at most).
 * test_wait_inflight: wait (10 s at most) until swap reads (write: pageout
 * writes) are in flight.
 */
char *test_paged_region(size_t npages);
size_t test_swapped_page(char *p, size_t from, size_t to);
void test_wait_inflight(bool write);
/*
 * test_stats_gone: the statistics once everything was unmapped: a
 * pageout batch in flight frees the slots (and counts) of the pages
 * unmapped under it when its writes end, so wait (5 s at most) until no
 * swap slot and no resident page is left.
 */
struct upvm_stats test_stats_gone(void);

/*
 * test_check_peak: the budget is kept: the most pages ever resident are at
 * most the budget plus the slack (one 512-page sequential window per
 * fault thread, the default seq_max).
 */
void test_check_peak(struct upvm_stats st);

/* skip the current test (cr_skip_test) unless the kernel has the feature */
void need_uffd_feature(uint64_t feature, const char *name);
#define NEED_UFFD_FEATURE(f)	need_uffd_feature((f), #f)

#endif /* UPVM_TEST_HARNESS_H */
