/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * filewrite.c: reproducer of an open bug (not yet in the suite): pwrite(2)
 * beside a read-only shared mapping that grows by mremap, under
 * `upvm run --files --budget 16M -- ./filewrite FILE 32768 300000 SEED`;
 * upvm writes stale dirty pages back over what pwrite stored (move
 * protocol; no budget).  Fixed, it becomes a test in test/programs/.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* filewrite FILE NPAGES ITERS SEED: map FILE read-only shared, pwrite
   random pages with a new generation, read through the map: every word of
   every page read must hold (page << 32 | generation) */
int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: filewrite FILE NPAGES ITERS SEED\n");
		return 2;
	}
	size_t np = strtoul(argv[2], 0, 0), it = strtoul(argv[3], 0, 0);
	unsigned seed = strtoul(argv[4], 0, 0);
	uint32_t *gen = calloc(np, 4);
	char buf[4096];
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	for (size_t p = 0; p < np; p++) {
		for (int w = 0; w < 512; w++) ((uint64_t *)buf)[w] = p << 32 | 0;
		if (pwrite(fd, buf, 4096, p * 4096) != 4096) { perror("pwrite"); return 2; }
	}
	fsync(fd);
	size_t cap = np + 4096;
	gen = realloc(gen, cap * 4);
	memset(gen + np, 0, 4096 * 4);
	const char *m = mmap(0, np * 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 2; }
	srandom(seed);
	for (size_t i = 0; i < it; i++) {
		size_t p = random() % np;
		int op = random() % 4;
		if (random() % 64 == 0 && np < cap) {
			/* grow by a page as sqlite does: ftruncate, mremap, pwrite */
			if (ftruncate(fd, (np + 1) * 4096)) { perror("ftruncate"); return 2; }
			m = mremap((void *)m, np * 4096, (np + 1) * 4096, MREMAP_MAYMOVE);
			if (m == MAP_FAILED) { perror("mremap"); return 2; }
			if (random() % 2) {
				const uint64_t *q = (const uint64_t *)(m + np * 4096);
				if (q[7] != 0) { fprintf(stderr, "grown page %zu not zero\n", np); return 1; }
			}
			gen[np] = 1;
			for (int w = 0; w < 512; w++) ((uint64_t *)buf)[w] = np << 32 | 1;
			if (pwrite(fd, buf, 4096, np * 4096) != 4096) { perror("pwrite"); return 2; }
			np++;
			continue;
		}
		if (op == 0) {
			/* write a run of pages */
			size_t n = 1 + random() % 8;
			if (p + n > np) n = np - p;
			char *b = malloc(n * 4096);
			for (size_t k = 0; k < n; k++) {
				gen[p + k]++;
				for (int w = 0; w < 512; w++)
					((uint64_t *)(b + k * 4096))[w] = (p + k) << 32 | gen[p + k];
			}
			if (pwrite(fd, b, n * 4096, p * 4096) != (ssize_t)(n * 4096)) { perror("pwrite"); return 2; }
			free(b);
		} else {
			/* read through the map, a stretch */
			size_t n = 1 + random() % 64;
			if (p + n > np) n = np - p;
			for (size_t k = 0; k < n; k++) {
				const uint64_t *q = (const uint64_t *)(m + (p + k) * 4096);
				uint64_t want = (p + k) << 32 | gen[p + k];
				int w = 0;
				while (w < 512 && q[w] == want)
					w++;
				if (w < 512) {
					uint64_t fb[512];
					pread(fd, fb, 4096, (p + k) * 4096);
					fprintf(stderr, "iter %zu page %zu word %d (np %zu): map %#lx want %#lx file %#lx\n", i, p + k, w, np, (unsigned long)q[w], (unsigned long)want, (unsigned long)fb[w]);
					return 1;
				}
			}
		}
	}
	printf("ok %zu iterations\n", it);
	return 0;
}
