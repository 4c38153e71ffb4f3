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
 * usage: upvm-xproc [--pages N] [--repeat R]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
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

#define PG	4096UL

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
		v[r] = fn(n);
	qsort(v, (size_t)reps, sizeof(v[0]), cmp);
	printf("%-40s min %6.2f us  median %6.2f us\n", what, v[0],
	    v[reps / 2]);
}

int
main(int argc, char **argv)
{
	size_t pages = 20000;
	int reps = 5;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--pages") == 0)
			pages = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--repeat") == 0)
			reps = atoi(argv[i + 1]);
	}
	if (pages == 0 || reps < 1 || reps > 64) {
		fprintf(stderr, "usage: upvm-xproc [--pages N] [--repeat 1..64]"
		    "\n");
		return 2;
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
