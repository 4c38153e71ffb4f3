/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fileback.c: --backing file: each run's region is a fresh, unnamed,
 * sparse file of the region's size, mapped shared (native: mmap; the
 * kernel-swap child: mmap under the cgroup, whose page cache is charged
 * to it; upvm: upvm_map_file), and after the region is unmapped the whole
 * file is read back with pread and checked against what the run wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define FB_CHUNK	((size_t)1 << 20)

int
fb_create(const char *dir, size_t bytes)
{
	char path[PATH_MAX];
	int fd, error;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0) {
		if (snprintf(path, sizeof(path), "%s/upvm-bench.XXXXXX",
		    dir) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
			return -errno;
		(void)unlink(path);
	}
	if (ftruncate(fd, (off_t)bytes) != 0) {
		error = -errno;
		close(fd);
		return error;
	}
	return fd;
}

int
fb_verify(int fd, const struct workload *wl, const struct wl_ctx *c,
    struct wl_bad *bad)
{
	size_t words = c->wc_pagesize / sizeof(uint64_t), pg = 0;
	uint64_t *buf, gen;
	ssize_t n;

	buf = mmap(NULL, FB_CHUNK, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -errno;
	while (pg < c->wc_npages) {
		n = pread(fd, buf, FB_CHUNK, (off_t)(pg * c->wc_pagesize));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			munmap(buf, FB_CHUNK);
			return n < 0 ? -errno : -EIO;
		}
		for (size_t i = 0; i < (size_t)n / c->wc_pagesize; i++, pg++) {
			gen = c->wc_gen + (c->wc_pgen != NULL ?
			    c->wc_pgen[pg] : wl->wl_final);
			for (size_t w = 0; w < words; w++) {
				uint64_t want = wl_pattern(pg, gen, w);
				uint64_t got = buf[i * words + w];

				if (got == want)
					continue;
				*bad = (struct wl_bad){ .wb_page = pg,
				    .wb_word = w, .wb_expected = want,
				    .wb_got = got, .wb_phase = WL_PH_FILE };
				munmap(buf, FB_CHUNK);
				return 0;
			}
		}
	}
	munmap(buf, FB_CHUNK);
	return 0;
}
