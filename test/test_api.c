/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_api.c: the public API's contract: bad input gets a negative errno
 * and exactly one log line, and changes nothing; lifecycle; partial unmap
 * and advice over parts of regions keep every other page intact.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "log.h"
#include "upvm.h"
#include "vm.h"

static int log_pipe[2];

/* capture the log lines of what follows */
static void
log_capture(void)
{
	cr_assert_eq(pipe(log_pipe), 0);
	upvm_log_set_fd(log_pipe[1]);
}

/* => the number of lines logged since log_capture(); the text in buf */
static int
log_lines(char *buf, size_t len)
{
	ssize_t n;
	int lines = 0;

	upvm_log_set_fd(2);
	close(log_pipe[1]);
	n = read(log_pipe[0], buf, len - 1);
	close(log_pipe[0]);
	buf[n > 0 ? n : 0] = '\0';
	for (char *s = buf; *s != '\0'; s++)
		lines += *s == '\n';
	return lines;
}

/* the call returns err and logs exactly one line containing `word` */
#define EXPECT_ONE_LINE(call, err, word) do {				\
	char _buf[2048];						\
	log_capture();							\
	cr_assert_eq((call), (err), "%s", #call);			\
	cr_assert_eq(log_lines(_buf, sizeof(_buf)), 1, "%s", _buf);	\
	cr_assert(strstr(_buf, (word)) != NULL, "%s", _buf);		\
} while (0)

static void
init(void)
{
	struct upvm_config cfg;

	upvm_config_default(&cfg);
	cr_assert_eq(upvm_init(&cfg), 0);
}

Test(api, calls_before_init_fail_with_enxio, .timeout = 10)
{
	struct upvm_stats st;
	void *p;

	EXPECT_ONE_LINE(upvm_map(PAGE_SIZE, 0, &p), -ENXIO, "upvm_init");
	EXPECT_ONE_LINE(upvm_stats(&st), -ENXIO, "upvm_init");
	EXPECT_ONE_LINE(upvm_fini(), -ENXIO, "not initialized");
}

Test(api, double_init_is_ebusy, .timeout = 10)
{
	init();
	EXPECT_ONE_LINE(upvm_init(NULL), -EBUSY, "already initialized");
	cr_assert_eq(upvm_fini(), 0);
	/* and a new start works */
	init();
	cr_assert_eq(upvm_fini(), 0);
}

Test(api, bad_config_is_rejected_before_anything_starts, .timeout = 10)
{
	struct upvm_config cfg;
	struct upvm_stats st;

	upvm_config_default(&cfg);
	cfg.cluster_pages = 3;
	EXPECT_ONE_LINE(upvm_init(&cfg), -EINVAL, "cluster");
	upvm_config_default(&cfg);
	cfg.log_level = 9;
	EXPECT_ONE_LINE(upvm_init(&cfg), -EINVAL, "log");
	setenv("UPVM_CLUSTR", "16", 1);
	EXPECT_ONE_LINE(upvm_init(NULL), -EINVAL, "UPVM_CLUSTR");
	unsetenv("UPVM_CLUSTR");
	setenv("UPVM_SEQ_MAX", "lots", 1);
	EXPECT_ONE_LINE(upvm_init(NULL), -EINVAL, "UPVM_SEQ_MAX");
	cr_assert_eq(upvm_stats(&st), -ENXIO);
}

Test(api, map_rejects_bad_sizes_and_flags, .timeout = 10)
{
	void *p = (void *)0x1234;

	init();
	EXPECT_ONE_LINE(upvm_map(0, 0, &p), -EINVAL, "size 0");
	EXPECT_ONE_LINE(upvm_map((size_t)1 << 44, 0, &p), -ENOMEM, "8 TiB");
	EXPECT_ONE_LINE(upvm_map(SIZE_MAX, 0, &p), -ENOMEM, "8 TiB");
	EXPECT_ONE_LINE(upvm_map(PAGE_SIZE, 0x100, &p), -EINVAL, "flags");
	EXPECT_ONE_LINE(upvm_map(PAGE_SIZE, UPVM_MAP_SEQUENTIAL |
	    UPVM_MAP_RANDOM, &p), -EINVAL, "flags");
	EXPECT_ONE_LINE(upvm_map(PAGE_SIZE, 0, NULL), -EINVAL, "NULL");
	cr_assert_eq(p, (void *)0x1234, "output untouched on error");
	upvm_fini();
}

Test(api, map_of_largest_region_works_lazily, .timeout = 30)
{
	size_t big = (size_t)1 << 40;	/* 1 TiB of address space */
	struct upvm_stats st;
	char *p;

	init();
	cr_assert_eq(upvm_map(big, 0, (void **)&p), 0);
	p[big - 1] = 1;
	p[0] = 2;
	cr_assert_eq(p[big - 1], 1);
	cr_assert_eq(p[0], 2);
	cr_assert_eq(upvm_stats(&st), 0);
	cr_assert_eq(st.mapped_bytes, big);
	cr_assert_eq(upvm_unmap(p, big), 0);
	upvm_fini();
}

Test(api, unmap_rejects_bad_and_foreign_ranges_changing_nothing,
    .timeout = 20)
{
	size_t n = 64;
	char *p, *other;

	init();
	cr_assert_eq(upvm_map(n * PAGE_SIZE, 0, (void **)&p), 0);
	test_pattern_fill(p, n, 0, 1);
	other = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	EXPECT_ONE_LINE(upvm_unmap(p + 1, PAGE_SIZE), -EINVAL, "aligned");
	EXPECT_ONE_LINE(upvm_unmap(p, 0), -EINVAL, "length");
	EXPECT_ONE_LINE(upvm_unmap(other, PAGE_SIZE), -EINVAL, "not wholly");
	EXPECT_ONE_LINE(upvm_unmap(p, (n + 1) * PAGE_SIZE), -EINVAL,
	    "not wholly");
	EXPECT_ONE_LINE(upvm_unmap(p - PAGE_SIZE, 2 * PAGE_SIZE), -EINVAL,
	    "not wholly");
	EXPECT_ONE_LINE(upvm_unmap((void *)(uintptr_t)-PAGE_SIZE,
	    2 * PAGE_SIZE), -EINVAL, "invalid");
	cr_assert_eq(test_pattern_bad(p, n, 0, 1), -1);
	cr_assert_eq(upvm_unmap(p, n * PAGE_SIZE), 0);
	EXPECT_ONE_LINE(upvm_unmap(p, n * PAGE_SIZE), -EINVAL, "not wholly");
	upvm_fini();
}

static sigjmp_buf segv_jmp;

static void
on_segv(int sig)
{
	siglongjmp(segv_jmp, 1);
}

static bool
faults_segv(volatile char *addr)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	bool segv = false;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(segv_jmp, 1) == 0)
		(void)*addr;
	else
		segv = true;
	sigaction(SIGSEGV, &old, NULL);
	return segv;
}

Test(api, partial_unmaps_keep_the_rest, .timeout = 30)
{
	size_t n = 1024;
	struct upvm_stats st;
	char *p;

	init();
	cr_assert_eq(upvm_map(n * PAGE_SIZE, 0, (void **)&p), 0);
	test_pattern_fill(p, n, 0, 2);
	/* a hole in the middle, then the head, then a tail piece */
	cr_assert_eq(upvm_unmap(p + 100 * PAGE_SIZE, 50 * PAGE_SIZE), 0);
	cr_assert_eq(upvm_unmap(p, 10 * PAGE_SIZE), 0);
	cr_assert_eq(upvm_unmap(p + 1000 * PAGE_SIZE, 24 * PAGE_SIZE), 0);
	cr_assert(faults_segv(p));
	cr_assert(faults_segv(p + 120 * PAGE_SIZE));
	cr_assert(faults_segv(p + 1010 * PAGE_SIZE));
	cr_assert_eq(test_pattern_bad(p + 10 * PAGE_SIZE, 90, 10, 2), -1);
	cr_assert_eq(test_pattern_bad(p + 150 * PAGE_SIZE, 850, 150, 2), -1);
	cr_assert_eq(upvm_stats(&st), 0);
	cr_assert_eq(st.mapped_bytes, (n - 50 - 10 - 24) * PAGE_SIZE);
	cr_assert_eq(st.resident_pages, n - 50 - 10 - 24);
	cr_assert_eq(st.regions, 2);
	/* one unmap over both remaining pieces and the hole is refused */
	cr_assert_eq(upvm_unmap(p + 10 * PAGE_SIZE, 990 * PAGE_SIZE), -EINVAL);
	cr_assert_eq(test_pattern_bad(p + 10 * PAGE_SIZE, 90, 10, 2), -1);
	cr_assert_eq(upvm_unmap(p + 10 * PAGE_SIZE, 90 * PAGE_SIZE), 0);
	cr_assert_eq(upvm_unmap(p + 150 * PAGE_SIZE, 850 * PAGE_SIZE), 0);
	cr_assert_eq(upvm_stats(&st), 0);
	cr_assert_eq(st.regions, 0);
	cr_assert_eq(st.resident_pages, 0);
	upvm_fini();
}

Test(api, unmap_across_two_adjacent_regions, .timeout = 30)
{
	char *a, *b;

	init();
	/* regions land where the kernel puts them; find two adjacent */
	cr_assert_eq(upvm_map(64 * PAGE_SIZE, 0, (void **)&a), 0);
	cr_assert_eq(upvm_map(64 * PAGE_SIZE, 0, (void **)&b), 0);
	if (b + 64 * PAGE_SIZE != a && a + 64 * PAGE_SIZE != b)
		cr_skip_test("the kernel did not place the regions adjacent");
	if (b < a) {
		char *t = a;

		a = b;
		b = t;
	}
	test_pattern_fill(a, 128, 0, 3);
	cr_assert_eq(upvm_unmap(a + 32 * PAGE_SIZE, 64 * PAGE_SIZE), 0);
	cr_assert_eq(test_pattern_bad(a, 32, 0, 3), -1);
	cr_assert_eq(test_pattern_bad(b + 32 * PAGE_SIZE, 32, 96, 3), -1);
	cr_assert(faults_segv(a + 40 * PAGE_SIZE));
	upvm_fini();
}

Test(api, advise_rejects_bad_advice_changing_nothing, .timeout = 20)
{
	char *p;

	init();
	cr_assert_eq(upvm_map(64 * PAGE_SIZE, 0, (void **)&p), 0);
	test_pattern_fill(p, 64, 0, 1);
	EXPECT_ONE_LINE(upvm_advise(p, PAGE_SIZE, 0), -EINVAL, "advice");
	EXPECT_ONE_LINE(upvm_advise(p, PAGE_SIZE, 0x100), -EINVAL, "advice");
	EXPECT_ONE_LINE(upvm_advise(p, PAGE_SIZE, UPVM_ADV_RANDOM |
	    UPVM_ADV_SEQUENTIAL), -EINVAL, "advice");
	EXPECT_ONE_LINE(upvm_advise(p, 64 * PAGE_SIZE, UPVM_ADV_WILLNEED |
	    UPVM_ADV_DONTNEED), -EINVAL, "advice");
	EXPECT_ONE_LINE(upvm_advise(p, 65 * PAGE_SIZE, UPVM_ADV_DONTNEED),
	    -EINVAL, "not wholly");
	EXPECT_ONE_LINE(upvm_advise(p + 8, PAGE_SIZE, UPVM_ADV_DONTNEED),
	    -EINVAL, "aligned");
	cr_assert_eq(test_pattern_bad(p, 64, 0, 1), -1);
	upvm_fini();
}

Test(api, advice_on_part_of_a_region_splits_and_keeps_data, .timeout = 30)
{
	size_t n = 4096;
	struct upvm_stats st;
	char *p;

	init();
	cr_assert_eq(upvm_map(n * PAGE_SIZE, 0, (void **)&p), 0);
	test_pattern_fill(p, 1024, 0, 1);
	cr_assert_eq(upvm_advise(p + 512 * PAGE_SIZE, 1024 * PAGE_SIZE,
	    UPVM_ADV_RANDOM), 0);
	cr_assert_eq(upvm_advise(p + 2048 * PAGE_SIZE, 1024 * PAGE_SIZE,
	    UPVM_ADV_SEQUENTIAL | UPVM_ADV_WILLNEED), 0);
	cr_assert_eq(upvm_stats(&st), 0);
	/* [0,512) [512,1536) [1536,2048) [2048,3072) [3072,4096) */
	cr_assert_eq(st.regions, 5);
	/* random part: one page per fault */
	p[1100 * PAGE_SIZE] = 1;
	p[1200 * PAGE_SIZE] = 1;
	cr_assert_eq(test_pattern_bad(p, 1024, 0, 1), -1);
	cr_assert_eq(upvm_advise(p, n * PAGE_SIZE, UPVM_ADV_NORMAL), 0);
	cr_assert_eq(upvm_stats(&st), 0);
	cr_assert_eq(st.regions, 1, "merged back into one entry");
	test_pattern_fill(p, n, 0, 2);
	cr_assert_eq(test_pattern_bad(p, n, 0, 2), -1);
	cr_assert_eq(upvm_unmap(p, n * PAGE_SIZE), 0);
	upvm_fini();
}

Test(api, fini_leaves_regions_as_ordinary_memory, .timeout = 30)
{
	char *p;

	init();
	cr_assert_eq(upvm_map(256 * PAGE_SIZE, 0, (void **)&p), 0);
	test_pattern_fill(p, 128, 0, 6);
	cr_assert_eq(upvm_fini(), 0);
	/* resolved pages keep their data, the others are zero-filled */
	cr_assert_eq(test_pattern_bad(p, 128, 0, 6), -1);
	cr_assert_eq(test_zero_bad(p + 128 * PAGE_SIZE, 128), -1);
	munmap(p, 256 * PAGE_SIZE);
}

Test(api, stats_reject_null_and_count, .timeout = 20)
{
	struct upvm_stats st;
	char *p;

	init();
	EXPECT_ONE_LINE(upvm_stats(NULL), -EINVAL, "NULL");
	cr_assert_eq(upvm_map(100 * PAGE_SIZE + 1, 0, (void **)&p), 0);
	cr_assert_eq(upvm_stats(&st), 0);
	cr_assert_eq(st.regions, 1);
	cr_assert_eq(st.mapped_bytes, 101 * PAGE_SIZE);
	cr_assert_gt(st.handlers, 0);
	cr_assert_gt(st.meta_bytes, 0);
	cr_assert_eq(upvm_stats_percentile(st.latency_hist,
	    UPVM_LATENCY_BUCKETS, 50), 0);
	upvm_fini();
}

Test(api, percentile_reads_bucket_bounds, .timeout = 5)
{
	uint64_t h[UPVM_LATENCY_BUCKETS] = { 0 };

	h[3] = 50;	/* values 4..7 */
	h[10] = 49;	/* 512..1023 */
	h[20] = 1;
	cr_assert_eq(upvm_stats_percentile(h, UPVM_LATENCY_BUCKETS, 50), 8);
	cr_assert_eq(upvm_stats_percentile(h, UPVM_LATENCY_BUCKETS, 90), 1024);
	cr_assert_eq(upvm_stats_percentile(h, UPVM_LATENCY_BUCKETS, 100),
	    1 << 20);
}
