/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * crash.c: a program that dies with a core dump after writing its memory,
 * and the check of that dump (coredump.sh runs both).  It knows nothing
 * of upvm.
 *
 * usage: crash abort|segv|quit MIB   map MIB of memory, write every page
 *                                    (pattern.h, generation 7), print
 *                                    "crash: ADDR NPAGES", then die by
 *                                    abort(), a write to address 8 or
 *                                    SIGQUIT sent to itself
 *        crash check CORE ADDR NPAGES  check every page of [ADDR, +NPAGES)
 *                                    in the ELF core file CORE; prints
 *                                    "check: OK ..." or the pages that are
 *                                    wrong (zeros counted apart), exit 1
 */
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pattern.h"

#define GEN	7

/* a write here faults (volatile: the compiler cannot see it is NULL) */
static volatile int *volatile nowhere;

static int
die(const char *how, size_t mib)
{
	size_t n = mib * 256;
	char *p;

	p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("crash: mmap");
		return 2;
	}
	for (size_t i = 0; i < n; i++)
		pattern_fill_page(p + i * PG, i, GEN);
	printf("crash: %#lx %zu\n", (unsigned long)p, n);
	fflush(stdout);
	if (strcmp(how, "abort") == 0)
		abort();
	if (strcmp(how, "segv") == 0)
		*nowhere = 1;
	if (strcmp(how, "quit") == 0)
		kill(getpid(), SIGQUIT);
	fprintf(stderr, "crash: still alive after %s\n", how);
	return 2;
}

/* check: every page of the region in the core holds its pattern */
static int
check(const char *core, unsigned long addr, size_t n)
{
	size_t found = 0, bad = 0, zero = 0, first_bad = (size_t)-1;
	static const char zeros[PG];
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	struct stat st;
	char *img;
	int fd;

	if ((fd = open(core, O_RDONLY)) < 0 || fstat(fd, &st) != 0 ||
	    (img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0)) == MAP_FAILED) {
		perror(core);
		return 2;
	}
	eh = (const Elf64_Ehdr *)img;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_type != ET_CORE) {
		fprintf(stderr, "check: %s is not an ELF core file\n", core);
		return 2;
	}
	ph = (const Elf64_Phdr *)(img + eh->e_phoff);
	for (size_t i = 0; i < n; i++) {
		unsigned long va = addr + i * PG;
		const char *page = NULL;

		for (int k = 0; k < eh->e_phnum; k++)
			if (ph[k].p_type == PT_LOAD && va >= ph[k].p_vaddr &&
			    va + PG <= ph[k].p_vaddr + ph[k].p_filesz) {
				page = img + ph[k].p_offset + (va -
				    ph[k].p_vaddr);
				break;
			}
		if (page == NULL)
			continue;
		found++;
		if (pattern_page_ok(page, i, GEN))
			continue;
		bad++;
		if (memcmp(page, zeros, PG) == 0)
			zero++;
		if (first_bad == (size_t)-1)
			first_bad = i;
	}
	if (found == n && bad == 0) {
		printf("check: OK %zu of %zu pages right in the core\n", n, n);
		return 0;
	}
	printf("check: %zu of %zu pages in the core, %zu wrong (%zu of them "
	    "zeros), the first page %zu\n", found, n, bad, zero,
	    first_bad == (size_t)-1 ? 0 : first_bad);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "check") != 0)
		return die(argv[1], strtoul(argv[2], NULL, 0));
	if (argc == 5 && strcmp(argv[1], "check") == 0)
		return check(argv[2], strtoul(argv[3], NULL, 0),
		    strtoul(argv[4], NULL, 0));
	fprintf(stderr, "usage: crash abort|segv|quit MIB | crash check CORE "
	    "ADDR NPAGES\n");
	return 2;
}
