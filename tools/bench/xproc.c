/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xproc.c: upvm-xproc, the measurement behind upvmd's design (README: One
 * budget for many processes).  What would serving a process's faults from
 * another process cost, against serving them from a thread of its own?
 *
 *   in-process   a thread of the faulting process reads the userfaultfd
 *                and resolves each fault with UFFDIO_COPY;
 *   daemon       the same, in another process that got the userfaultfd
 *                over a unix socket (SCM_RIGHTS), as CRIU's lazy-pages
 *                daemon and QEMU's postcopy do;
 *   round trip   one request and its answer between two processes over
 *                a SOCK_SEQPACKET socket: what each interposed mmap,
 *                munmap or madvise would add if the daemon kept the map,
 *                and each pageout batch an agent in the process would
 *                have to execute.
 *
 * Each fault is one page touched for the first time; the figure is the
 * faulting thread's time per page (min and median of --repeat runs).
 *
 * --touch measures instead what a program pays on its first access to a
 * page that is already mapped, by who mapped it: the kernel's own
 * anonymous fault and page-cache fault-around against pages mapped with
 * UFFDIO_COPY (writable, and write-protected as upvm maps clean pages)
 * and a huge page moved in with UFFDIO_MOVE.  Under shadow paging (a
 * nested virtual machine) the first access to a page table entry that the
 * guest kernel wrote outside a fault of that access can trap to the
 * hypervisor: that cost is the program's, on top of the pagein's (README:
 * Benchmarks, what limits upvm here).
 * usage: upvm-xproc [--pages N] [--repeat R] [--touch]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"

#define PG	4096UL
#define HUGE	(2UL << 20)

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void __attribute__((noreturn))
die(const char *what)
{
	fprintf(stderr, "upvm-xproc: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0 || ioctl(fd, UFFDIO_API, &api) != 0)
		die("userfaultfd (root, or vm.unprivileged_userfaultfd=1)");
	return fd;
}

/* serve: resolve every missing fault on fd with a page of src, until
   `npages` are done */
static void
serve(int fd, size_t npages)
{
	static char page[PG] __attribute__((aligned(4096)));
	struct uffd_msg msg;
	size_t done = 0;

	memset(page, 0x5a, sizeof(page));
	while (done < npages) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			die("poll");
		if (read(fd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		struct uffdio_copy c = {
			.dst = msg.arg.pagefault.address & ~(PG - 1),
			.src = (uintptr_t)page, .len = PG };
		if (ioctl(fd, UFFDIO_COPY, &c) != 0 && errno != EEXIST)
			die("UFFDIO_COPY");
		done++;
	}
}

struct srv { int fd; size_t n; };

static void *
serve_thread(void *arg)
{
	struct srv *s = arg;

	serve(s->fd, s->n);
	return NULL;
}

static char *
region(int fd, size_t npages)
{
	char *p = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = npages * PG },
		.mode = UFFDIO_REGISTER_MODE_MISSING };

	if (p == MAP_FAILED || ioctl(fd, UFFDIO_REGISTER, &r) != 0)
		die("register");
	return p;
}

/* touch every page: per page, microseconds */
static double
touch(char *p, size_t npages)
{
	double t0 = now_us();
	volatile char sink = 0;

	for (size_t i = 0; i < npages; i++)
		sink += p[i * PG];
	(void)sink;
	return (now_us() - t0) / (double)npages;
}

static double
in_process(size_t npages)
{
	int fd = uffd_open();
	char *p = region(fd, npages);
	struct srv s = { fd, npages };
	pthread_t t;
	double us;

	pthread_create(&t, NULL, serve_thread, &s);
	us = touch(p, npages);
	pthread_join(t, NULL);
	munmap(p, npages * PG);
	close(fd);
	return us;
}

static void
send_fd(int sock, int fd)
{
	char c = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1)
		die("sendmsg");
}

static int
recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	int fd;

	if (recvmsg(sock, &m, 0) != 1)
		die("recvmsg");
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	return fd;
}

static double
from_daemon(size_t npages)
{
	int sv[2], fd, status;
	char *p;
	pid_t pid;
	double us;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		die("socketpair");
	fd = uffd_open();
	p = region(fd, npages);
	if ((pid = fork()) == 0) {
		int ufd = recv_fd(sv[1]);

		serve(ufd, npages);
		_exit(0);
	}
	send_fd(sv[0], fd);
	close(fd);		/* the daemon holds it now */
	us = touch(p, npages);
	waitpid(pid, &status, 0);
	munmap(p, npages * PG);
	close(sv[0]);
	close(sv[1]);
	return us;
}

static double
round_trip(size_t n)
{
	int sv[2], status;
	char buf[64] = { 0 };
	pid_t pid;
	double t0, us;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
		die("socketpair");
	if ((pid = fork()) == 0) {
		for (size_t i = 0; i < n; i++)
			if (read(sv[1], buf, sizeof(buf)) <= 0 ||
			    write(sv[1], buf, 48) != 48)
				_exit(1);
		_exit(0);
	}
	t0 = now_us();
	for (size_t i = 0; i < n; i++)
		if (write(sv[0], buf, 48) != 48 ||
		    read(sv[0], buf, sizeof(buf)) <= 0)
			die("round trip");
	us = (now_us() - t0) / (double)n;
	waitpid(pid, &status, 0);
	close(sv[0]);
	close(sv[1]);
	return us;
}

/*
 * First touch (--touch).  Each returns the program's time per page of its
 * first read of npages pages, or -1 when the kernel lacks the feature.
 */
static char *
anon(size_t len, int advice)
{
	char *raw = mmap(NULL, len + HUGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *p;

	if (raw == MAP_FAILED)
		die("mmap");
	/* 2 MiB aligned, for the huge pages; the slack goes at once */
	p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	if (p > raw)
		munmap(raw, (size_t)(p - raw));
	munmap(p + len, (size_t)(raw + HUGE - p));
	(void)madvise(p, len, advice);
	return p;
}

static double
kernel_anon_fault(size_t npages)
{
	char *p = anon(npages * PG, MADV_NOHUGEPAGE);
	double t0 = now_us();

	for (size_t i = 0; i < npages; i++)
		p[i * PG] = 1;
	t0 = (now_us() - t0) / (double)npages;
	munmap(p, npages * PG);
	return t0;
}

/*
 * A cached file of npages, mapped and read `maps` times: the time per page
 * of the last read (the first mapping of a page-cache page costs more than
 * the next ones under shadow paging).
 */
static double
fault_around(size_t npages, int maps)
{
	const char *dir = getenv("TMPDIR");
	char path[4096], *p, buf[PG];
	double us = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/upvm-xproc.XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp");
	if ((fd = mkstemp(path)) < 0)
		die(path);
	unlink(path);
	memset(buf, 0x5a, sizeof(buf));
	for (size_t i = 0; i < npages; i++)
		if (write(fd, buf, PG) != (ssize_t)PG)
			die("write");
	/* dropped and read back as a program's input file is: by the
	   kernel's readahead, which fills large folios; in the page cache
	   before the mapping, so that its faults read nothing */
	if (fdatasync(fd) != 0 ||
	    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
		die("fdatasync");
	for (size_t i = 0; i < npages; i++)
		if (pread(fd, buf, PG, (off_t)(i * PG)) != (ssize_t)PG)
			die("pread");
	for (int m = 0; m < maps; m++) {
		p = mmap(NULL, npages * PG, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap");
		us = touch(p, npages);
		munmap(p, npages * PG);
	}
	close(fd);
	return us;
}

static double
kernel_fault_around(size_t npages)
{
	return fault_around(npages, 1);
}

static double
kernel_fault_around_again(size_t npages)
{
	return fault_around(npages, 2);
}

/* npages mapped with UFFDIO_COPY in 2 MiB calls (mode), then read */
static double
after_copy(size_t npages, __u64 regmode, __u64 mode)
{
	static char src[HUGE] __attribute__((aligned(4096)));
	int fd = uffd_open();
	char *p = anon(npages * PG, MADV_NOHUGEPAGE);
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = npages * PG },
		.mode = regmode };
	double us = -1;

	memset(src, 0x5a, sizeof(src));
	if (ioctl(fd, UFFDIO_REGISTER, &r) == 0) {
		for (size_t off = 0; off < npages * PG; off += HUGE) {
			struct uffdio_copy c = { .dst = (uintptr_t)p + off,
			    .src = (uintptr_t)src, .mode = mode,
			    .len = off + HUGE <= npages * PG ? HUGE :
			    npages * PG - off };

			if (ioctl(fd, UFFDIO_COPY, &c) != 0)
				die("UFFDIO_COPY");
		}
		us = touch(p, npages);
	} else if (errno != EINVAL) {
		die("register");
	}
	munmap(p, npages * PG);
	close(fd);
	return us;
}

static double
after_copy_writable(size_t npages)
{
	return after_copy(npages, UFFDIO_REGISTER_MODE_MISSING, 0);
}

static double
after_copy_wp(size_t npages)
{
	return after_copy(npages, UFFDIO_REGISTER_MODE_MISSING |
	    UFFDIO_REGISTER_MODE_WP, UFFDIO_COPY_MODE_WP);
}

/* the source pages are huge ones: AnonHugePages covers them */
static bool
huge_backed(size_t len)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	unsigned long kb = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb * 1024 >= len;
}

static double
after_huge_move(size_t npages)
{
	size_t len = (npages * PG + HUGE - 1) & ~(HUGE - 1);
	struct uffdio_api api = { .api = UFFD_API,
	    .features = UFFD_FEATURE_MOVE };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	char *src, *dst;
	double us = -1;

	if (fd < 0)
		die("userfaultfd");
	if (ioctl(fd, UFFDIO_API, &api) != 0) {	/* no UFFDIO_MOVE */
		close(fd);
		return -1;
	}
	src = anon(len, MADV_HUGEPAGE);
	dst = anon(len, MADV_HUGEPAGE);
	for (size_t off = 0; off < len; off += PG)
		src[off] = 1;
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)dst, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_move m = { .dst = (uintptr_t)dst,
	    .src = (uintptr_t)src, .len = len };
	if (huge_backed(len)) {
		if (ioctl(fd, UFFDIO_REGISTER, &r) != 0 ||
		    ioctl(fd, UFFDIO_MOVE, &m) != 0)
			die("UFFDIO_MOVE");
		us = touch(dst, len / PG);
	}
	munmap(src, len);
	munmap(dst, len);
	close(fd);
	return us;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, double (*fn)(size_t), size_t n, int reps)
{
	double v[64];

	for (int r = 0; r < reps; r++)
		if ((v[r] = fn(n)) < 0) {
			printf("%-48s skipped: the kernel lacks it\n", what);
			return;
		}
	qsort(v, (size_t)reps, sizeof(v[0]), cmp);
	printf("%-48s min %6.2f us  median %6.2f us\n", what, v[0],
	    v[reps / 2]);
}

int
main(int argc, char **argv)
{
	size_t pages = 20000;
	int reps = 5;
	bool first_touch = false, bad = false;

	for (int i = 1; i < argc && !bad; i++) {
		char *end = NULL;

		if (strcmp(argv[i], "--touch") == 0)
			first_touch = true;
		else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc)
			pages = strtoul(argv[++i], &end, 10);
		else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
			reps = (int)strtol(argv[++i], &end, 10);
		else
			bad = true;
		if (end != NULL && *end != '\0')
			bad = true;
	}
	if (bad || pages == 0 || pages > (1UL << 22) || reps < 1 ||
	    reps > 64) {
		fprintf(stderr, "usage: upvm-xproc [--pages 1..4194304] "
		    "[--repeat 1..64] [--touch]\n");
		return 2;
	}
	if (first_touch) {
		printf("first read of %zu pages mapped before it, per page, "
		    "%d runs\n", pages, reps);
		report("kernel: anonymous fault (a write)",
		    kernel_anon_fault, pages, reps);
		report("kernel: fault-around, cached file, 1st mapping",
		    kernel_fault_around, pages, reps);
		report("kernel: fault-around, cached file, 2nd mapping",
		    kernel_fault_around_again, pages, reps);
		report("UFFDIO_COPY, writable", after_copy_writable, pages,
		    reps);
		report("UFFDIO_COPY, write-protected (upvm's clean)",
		    after_copy_wp, pages, reps);
		report("UFFDIO_MOVE of 2 MiB huge pages", after_huge_move,
		    pages, reps);
		return 0;
	}
	printf("%zu faults (one page each) per run, %d runs\n", pages, reps);
	report("fault served by a thread of the process", in_process, pages,
	    reps);
	report("fault served by another process (SCM_RIGHTS)", from_daemon,
	    pages, reps);
	report("request + answer between two processes", round_trip, pages,
	    reps);
	return 0;
}
