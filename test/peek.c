/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * peek.c: another process's view of memory, for test_outside: reads or
 * writes NPAGES pages at ADDR of process PID the ways debuggers and
 * checkpointers do, knowing nothing of upvm.
 *
 * usage: peek PID ADDR NPAGES MODE [FILE]
 *   vm-read    process_vm_readv, the pages to stdout
 *   mem-read   pread of /proc/PID/mem, the pages to stdout
 *   vm-write   process_vm_writev of the pages in FILE
 *   mem-write  pwrite of /proc/PID/mem of the pages in FILE
 *   ptrace     PTRACE_SEIZE + PTRACE_INTERRUPT of thread PID alone (its
 *              other threads run on), PTRACE_PEEKDATA of every word, the
 *              pages to stdout, then detach
 * Exit 0 when every byte moved; 3 when the kernel answered EIO (what
 * /proc/PID/mem and PTRACE_PEEKDATA answer for a page that is missing in
 * a userfaultfd range: their page lookup may not wait for the handler)
 * or, for /proc/PID/mem, stopped short at such a page (a read's bytes up
 * to there still go to stdout); 1 with a line saying which call failed
 * otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG	4096UL

static int
fail(const char *what)
{
	int eio = errno == EIO;

	fprintf(stderr, "peek: %s: %s\n", what, strerror(errno));
	return eio ? 3 : 1;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	for (; len > 0; buf += n, len -= (size_t)n)
		if ((n = write(fd, buf, len)) <= 0)
			return -1;
	return 0;
}

static int
peek_ptrace(pid_t pid, uintptr_t addr, char *buf, size_t len)
{
	int status;

	int rc = 0;

	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) != 0)
		return fail("PTRACE_SEIZE");
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) != 0)
		return fail("PTRACE_INTERRUPT");
	if (waitpid(pid, &status, __WALL) != pid)
		return fail("waitpid");
	for (size_t off = 0; off < len && rc == 0; off += sizeof(long)) {
		long w;

		errno = 0;
		w = ptrace(PTRACE_PEEKDATA, pid, (void *)(addr + off), NULL);
		if (w == -1 && errno != 0)
			rc = fail("PTRACE_PEEKDATA");
		memcpy(buf + off, &w, sizeof(w));
	}
	if (ptrace(PTRACE_DETACH, pid, NULL, NULL) != 0)
		return fail("PTRACE_DETACH");
	return rc;
}

/* peek_move: the transfer of one MODE; => 0, or peek's exit status */
static int
peek_move(pid_t pid, uintptr_t addr, char *buf, size_t len, const char *mode,
    const char *file)
{
	char path[64];
	int fd;

	if (strstr(mode, "-write") != NULL) {
		if (file == NULL || (fd = open(file, O_RDONLY)) < 0)
			return fail("opening FILE");
		if (pread(fd, buf, len, 0) != (ssize_t)len) {
			close(fd);
			return fail("reading FILE");
		}
		close(fd);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if (strcmp(mode, "vm-read") == 0 || strcmp(mode, "vm-write") == 0) {
		struct iovec local = { buf, len }, remote = { (void *)addr, len };
		ssize_t n = mode[3] == 'r' ?
		    process_vm_readv(pid, &local, 1, &remote, 1, 0) :
		    process_vm_writev(pid, &local, 1, &remote, 1, 0);

		if (n != (ssize_t)len)
			return fail(mode);
	} else if (strcmp(mode, "mem-read") == 0 ||
	    strcmp(mode, "mem-write") == 0) {
		ssize_t n;
		int rc = 0;

		if ((fd = open(path, mode[4] == 'r' ? O_RDONLY : O_WRONLY)) < 0)
			return fail(path);
		n = mode[4] == 'r' ? pread(fd, buf, len, (off_t)addr) :
		    pwrite(fd, buf, len, (off_t)addr);
		close(fd);
		/* short: the kernel stopped at the first page it could not
		   reach (EIO comes only when that is the first one); what
		   was read goes out, for the caller to check */
		if (n > 0 && n < (ssize_t)len) {
			if (mode[4] == 'r' && write_all(1, buf, (size_t)n) != 0)
				return fail("writing stdout");
			return 3;
		}
		if (n != (ssize_t)len)
			rc = fail(mode);
		if (rc != 0)
			return rc;
	} else if (strcmp(mode, "ptrace") == 0) {
		int rc = peek_ptrace(pid, addr, buf, len);

		if (rc != 0)
			return rc;
	} else {
		fprintf(stderr, "peek: unknown mode %s\n", mode);
		return 2;
	}
	if (strstr(mode, "-write") == NULL && write_all(1, buf, len) != 0)
		return fail("writing stdout");
	return 0;
}

int
main(int argc, char **argv)
{
	char *buf;
	size_t len;
	int rc;

	if (argc < 5) {
		fprintf(stderr, "usage: peek PID ADDR NPAGES MODE [FILE]\n");
		return 2;
	}
	len = strtoul(argv[3], NULL, 0) * PG;
	if ((buf = malloc(len)) == NULL)
		return fail("malloc");
	rc = peek_move((pid_t)strtol(argv[1], NULL, 0),
	    (uintptr_t)strtoull(argv[2], NULL, 0), buf, len, argv[4],
	    argc > 5 ? argv[5] : NULL);
	free(buf);
	return rc;
}
