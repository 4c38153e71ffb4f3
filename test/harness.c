/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * harness.c: page patterns and kernel-feature probes for the test suites.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
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
