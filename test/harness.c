/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * harness.c: page patterns and kernel-feature probes for the test suites.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "hostmm.h"
#include "log.h"
#include "uring.h"
#include "vm.h"

uint64_t
test_word(size_t index, uint64_t gen, size_t w)
{
	uint64_t x = ((uint64_t)index << 20) ^ (gen << 52) ^ (w + 1);

	x *= 0x9e3779b97f4a7c15ULL;
	return x | 1;
}

void
test_pattern_fill(void *buf, size_t npages, size_t first, uint64_t gen)
{
	for (size_t p = 0; p < npages; p++) {
		uint64_t *w = (uint64_t *)((char *)buf + p * PAGE_SIZE);

		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			w[i] = test_word(first + p, gen, i);
	}
}

long
test_pattern_bad(const void *buf, size_t npages, size_t first, uint64_t gen)
{
	for (size_t p = 0; p < npages; p++) {
		const uint64_t *w =
		    (const uint64_t *)((const char *)buf + p * PAGE_SIZE);

		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			if (w[i] != test_word(first + p, gen, i))
				return (long)p;
	}
	return -1;
}

long
test_zero_bad(const void *buf, size_t npages)
{
	for (size_t p = 0; p < npages; p++) {
		const uint64_t *w =
		    (const uint64_t *)((const char *)buf + p * PAGE_SIZE);

		for (size_t i = 0; i < PAGE_SIZE / 8; i++)
			if (w[i] != 0)
				return (long)p;
	}
	return -1;
}

bool
test_all_bytes(const void *p, int c, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)c)
			return false;
	return true;
}

void
need_uffd_feature(uint64_t feature, const char *name)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		cr_skip_test("userfaultfd unavailable: %s", strerror(errno));
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		close(fd);
		cr_skip_test("UFFDIO_API failed: %s", strerror(errno));
	}
	close(fd);
	if ((api.features & feature) != feature)
		cr_skip_test("kernel lacks userfaultfd feature %s", name);
}

static int log_fd[2] = { -1, -1 };
static char log_buf[8192];

void
test_log_capture(void)
{
	cr_assert_eq(pipe2(log_fd, O_NONBLOCK), 0);
	upvm_log_set_fd(log_fd[1]);
}

const char *
test_log_read(void)
{
	ssize_t n, len = 0;

	while ((n = read(log_fd[0], log_buf + len,
	    sizeof(log_buf) - 1 - (size_t)len)) > 0)
		len += n;
	log_buf[len] = '\0';
	return log_buf;
}

void
test_expect_one_line(const char *what, const char *name)
{
	const char *log = test_log_read();
	int lines = 0;

	for (const char *s = log; *s != '\0'; s++)
		lines += *s == '\n';
	cr_assert_eq(lines, 1, "%s: want one log line, got:\n%s", what, log);
	cr_assert_eq(log[strlen(log) - 1], '\n', "%s: a whole line", what);
	cr_assert_not_null(strstr(log, name), "%s: log does not name "
	    "\"%s\": %s", what, name, log);
}

const char *
test_log_last(void)
{
	return log_buf;
}

void
test_expect_no_log(const char *what)
{
	const char *log = test_log_read();

	cr_assert_eq(log[0], '\0', "%s: unexpected log: %s", what, log);
}

struct ring *
test_ring(unsigned depth)
{
	struct ring *r;
	int error = ring_create(depth, &r);

	if (error == -ENOSYS || error == -EPERM)
		cr_skip_test("io_uring unavailable: %s", strerror(-error));
	cr_assert_eq(error, 0, "ring_create(%u): %s", depth, strerror(-error));
	return r;
}

void
test_hostmm_start(size_t budget)
{
	struct upvm_config cfg;

	cr_assert_eq(upvm_config_from_env(&cfg), 0);
	cfg.budget = budget;
	cfg.threshold = (size_t)1 << 20;
	cr_assert_eq(upvm_init(&cfg), 0);
	hostmm_enable();
}

char *
test_hostmm_anon(size_t len, int prot, int flags)
{
	char *p = hostmm_mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS |
	    flags, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

char *
test_paged_region(size_t npages)
{
	char *p = test_hostmm_anon(npages * PAGE_SIZE, PROT_READ | PROT_WRITE,
	    0);

	test_pattern_fill(p, npages, 0, 1);
	cr_assert_gt(test_stats().pageouts, 0);
	return p;
}

size_t
test_swapped_page(char *p, size_t from, size_t to)
{
	unsigned char vec[256];

	cr_assert_leq(to - from, sizeof(vec));
	cr_assert_eq(mincore(p + from * PAGE_SIZE, (to - from) * PAGE_SIZE,
	    vec), 0);
	for (size_t i = 0; i < to - from; i++)
		if (!(vec[i] & 1))
			return from + i;
	cr_assert_fail("pages [%zu, %zu) are all resident", from, to);
	return 0;
}

void
test_wait_inflight(bool write)
{
	struct upvm_stats st;

	for (int i = 0; i < 10000; i++) {
		st = test_stats();
		if ((write ? st.writes_inflight : st.reads_inflight) > 0)
			return;
		usleep(1000);
	}
	cr_assert_fail("no %s in flight after 10 s", write ? "write" : "read");
}

struct upvm_stats
test_stats(void)
{
	struct upvm_stats st;

	cr_assert_eq(upvm_stats(&st), 0);
	return st;
}

struct upvm_stats
test_stats_gone(void)
{
	struct upvm_stats st = test_stats();

	for (int i = 0; i < 5000 && (st.swap_used_pages != 0 ||
	    st.resident_pages != 0); i++) {
		usleep(1000);
		st = test_stats();
	}
	return st;
}

static sigjmp_buf bus_jmp;

static void
on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

bool
test_raises_sigbus(volatile const char *addr)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	bool bus = false;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0)
		(void)*addr;
	else
		bus = true;
	sigaction(SIGBUS, &old, NULL);
	return bus;
}

void
test_check_peak(struct upvm_stats st)
{
	size_t slack = (size_t)st.handlers * 512;

	/* a stalled daemon (pdaemon.h) lets faults past the budget: the
	   peak then says nothing about the throttle */
	if (st.stalls != 0) {
		cr_log_warn("the pageout daemon stalled %lu times (a loaded "
		    "machine?); peak %lu pages of budget %lu not checked",
		    (unsigned long)st.stalls, (unsigned long)st.resident_peak,
		    (unsigned long)st.budget_pages);
		return;
	}
	cr_assert_leq(st.resident_peak, st.budget_pages + slack,
	    "peak %lu pages over budget %lu + slack %zu",
	    (unsigned long)st.resident_peak,
	    (unsigned long)st.budget_pages, slack);
}

bool
test_proc_runs(int pid, const char *name)
{
	char path[64], comm[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, name) == 0;
}
