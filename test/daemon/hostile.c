/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hostile.c: a broken or hostile client of a real upvmd.  Each case opens
 * a connection, sends something wrong, and must get an error reply (and,
 * for a broken message, the connection closed); afterwards upvmd must
 * still answer.  As a user other than root (--user, after setpriv), the
 * checks of who may see and change what: no other user's process in its
 * table, no budget change, no limit on another user's process.
 *
 * usage: hostile SOCKET [--user [ROOT_PID]] [--garbage N]
 * Exit 0 and "hostile: OK" when upvmd refused everything and lived.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dproto.h"

static const char *sock;
static int failures, cases;

static int
conn(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		printf("hostile: FAILED: cannot connect to %s: %s\n", sock,
		    strerror(errno));
		exit(1);
	}
	return fd;
}

/* the next answer's type; 0: the connection closed; -1: nothing in 3 s */
static int
answer(int fd, void *buf)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 3000) <= 0)
		return -1;
	n = recv(fd, buf, DPROTO_MAX_MSG, 0);
	if (n <= 0)
		return 0;
	return dproto_check(buf, (size_t)n, NULL);
}

static void
expect_error(const char *what, int fd, int want_errno, bool closes)
{
	union { struct dm_error e; char b[DPROTO_MAX_MSG]; } in;
	int t = answer(fd, &in);

	cases++;
	if (t != DM_ERROR || (want_errno != 0 && in.e.error != want_errno)) {
		printf("hostile: FAILED: %s: answer type %d (errno %d), not "
		    "the error %d\n", what, t, t == DM_ERROR ? in.e.error : 0,
		    want_errno);
		failures++;
	} else if (closes && answer(fd, &in) != 0) {
		printf("hostile: FAILED: %s: the connection stayed open\n",
		    what);
		failures++;
	}
	close(fd);
}

static void
send_raw(int fd, const void *buf, size_t n)
{
	(void)send(fd, buf, n, MSG_NOSIGNAL);
}

static void
hello(struct dm_hello *m, int pid)
{
	dproto_init(m, DM_HELLO);
	m->pid = pid;
	m->page_size = 4096;
	strcpy(m->comm, "hostile");
}

/* upvmd answers a stat: returns the rows for pid (0: all) it showed */
static int
stat_rows(int pid, int *nprocs)
{
	union {
		struct dm_hdr h; struct dm_stat_total t;
		char b[DPROTO_MAX_MSG];
	} in;
	struct dm_ctl_stat m;
	int fd = conn(), t, rows = 0;

	dproto_init(&m, DM_CTL_STAT);
	m.pid = pid;
	send_raw(fd, &m, sizeof(m));
	while ((t = answer(fd, &in)) == DM_STAT_PROC)
		rows++;
	close(fd);
	if (t != DM_STAT_TOTAL)
		return t == DM_ERROR ? -2 : -1;
	*nprocs = (int)in.t.nprocs;
	return rows;
}

static void
as_root(int garbage)
{
	char big[4096];
	struct dm_hello h;
	struct dm_report r;
	struct dm_welcome w;
	struct dm_ctl_stat s;
	int fd;

	fd = conn();
	send_raw(fd, "abc", 3);
	expect_error("3 bytes", fd, EPROTO, true);

	fd = conn();
	hello(&h, getpid());
	h.h.mh_magic = 0x12345678;
	send_raw(fd, &h, sizeof(h));
	expect_error("bad magic", fd, EPROTO, true);

	fd = conn();
	hello(&h, getpid());
	h.h.mh_version = 99;
	send_raw(fd, &h, sizeof(h));
	expect_error("another version", fd, EPROTO, true);

	fd = conn();
	hello(&h, getpid());
	h.h.mh_type = 77;
	send_raw(fd, &h, sizeof(h));
	expect_error("unknown type", fd, EPROTO, true);

	fd = conn();
	hello(&h, getpid());
	send_raw(fd, &h, sizeof(h) - 8);
	expect_error("truncated hello", fd, EPROTO, true);

	fd = conn();
	memset(big, 0, sizeof(big));
	hello(&h, getpid());
	memcpy(big, &h, sizeof(h));
	send_raw(fd, big, sizeof(big));
	expect_error("oversized packet", fd, EPROTO, true);

	fd = conn();
	hello(&h, 1);
	send_raw(fd, &h, sizeof(h));
	expect_error("hello for pid 1", fd, EPERM, true);

	fd = conn();
	hello(&h, getpid());
	memset(h.comm, 'x', sizeof(h.comm));
	send_raw(fd, &h, sizeof(h));
	expect_error("unterminated name", fd, EPROTO, true);

	fd = conn();
	dproto_init(&r, DM_REPORT);
	send_raw(fd, &r, sizeof(r));
	expect_error("report before hello", fd, EPROTO, true);

	fd = conn();
	dproto_init(&w, DM_WELCOME);
	w.grant_pages = 1;
	send_raw(fd, &w, sizeof(w));
	expect_error("a welcome from a client", fd, EPROTO, true);

	{
		union { struct dm_hdr hd; char b[DPROTO_MAX_MSG]; } in;

		fd = conn();
		hello(&h, getpid());
		h.page_size = 4096;
		send_raw(fd, &h, sizeof(h));
		cases++;
		if (answer(fd, &in) != DM_WELCOME) {
			printf("hostile: FAILED: a good hello got no "
			    "welcome\n");
			failures++;
		}
		send_raw(fd, &h, sizeof(h));
		expect_error("hello twice", fd, EPROTO, true);
	}

	{
		union { struct dm_hdr hd; char b[DPROTO_MAX_MSG]; } in;

		fd = conn();
		hello(&h, getpid());
		send_raw(fd, &h, sizeof(h));
		(void)answer(fd, &in);
		dproto_init(&s, DM_CTL_STAT);
		send_raw(fd, &s, sizeof(s));
		expect_error("stat on a process's connection", fd, EPROTO,
		    true);
	}

	srand(42);
	for (int i = 0; i < garbage; i++) {
		union { struct dm_hdr hd; char b[DPROTO_MAX_MSG]; } in;
		size_t n = (size_t)(rand() % (int)sizeof(big)) + 1;

		for (size_t k = 0; k < n; k++)
			big[k] = (char)rand();
		if (i % 2 == 0) {	/* a good header, a bad body */
			struct dm_hdr hd = { DPROTO_MAGIC, DPROTO_VERSION,
			    (uint16_t)(rand() % (DM_NTYPES + 2)),
			    (uint32_t)n, 0 };

			/* never a root's request that would really
			   change the budget or a limit */
			if (hd.mh_type == DM_CTL_BUDGET ||
			    hd.mh_type == DM_CTL_LIMIT)
				hd.mh_type = 77;
			if (n >= sizeof(hd))
				memcpy(big, &hd, sizeof(hd));
		}
		fd = conn();
		send_raw(fd, big, n);
		/* whatever it was: an answer or a close, never silence */
		cases++;
		if (answer(fd, &in) < 0) {
			printf("hostile: FAILED: garbage %d (%zu bytes): no "
			    "answer\n", i, n);
			failures++;
		}
		close(fd);
	}
}

static void
as_user(int root_pid)
{
	struct dm_ctl_budget b;
	struct dm_ctl_limit l;
	int rows, nprocs = 0, fd;

	fd = conn();
	dproto_init(&b, DM_CTL_BUDGET);
	b.bytes = 1ULL << 40;
	send_raw(fd, &b, sizeof(b));
	expect_error("budget as a user", fd, EPERM, false);

	if (root_pid > 0) {
		fd = conn();
		dproto_init(&l, DM_CTL_LIMIT);
		l.pid = root_pid;
		l.bytes = 4 << 20;
		send_raw(fd, &l, sizeof(l));
		expect_error("limit on root's process", fd, ESRCH, false);

		cases++;
		if (stat_rows(root_pid, &nprocs) != -2) {
			printf("hostile: FAILED: a user saw root's pid %d\n",
			    root_pid);
			failures++;
		}
	}
	cases++;
	rows = stat_rows(0, &nprocs);
	if (rows != 0 || nprocs == 0) {
		printf("hostile: FAILED: a user saw %d rows of %d processes "
		    "(should see none of root's, and the count)\n", rows,
		    nprocs);
		failures++;
	}
}

int
main(int argc, char **argv)
{
	int nprocs = 0, garbage = 200, root_pid = 0;
	bool user = false;

	if (argc < 2) {
		fprintf(stderr, "usage: hostile SOCKET [--user [ROOT_PID]] "
		    "[--garbage N]\n");
		return 2;
	}
	sock = argv[1];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0) {
			user = true;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				root_pid = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--garbage") == 0 && i + 1 < argc) {
			garbage = atoi(argv[++i]);
		}
	}
	if (user)
		as_user(root_pid);
	else
		as_root(garbage);
	cases++;
	if (stat_rows(0, &nprocs) < 0) {
		printf("hostile: FAILED: upvmd does not answer afterwards\n");
		failures++;
	}
	if (failures > 0)
		return 1;
	printf("hostile: OK: %d cases refused, upvmd still answers\n", cases);
	return 0;
}
