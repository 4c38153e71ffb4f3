/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl.c: "upvm stat", "upvm top" and "upvm ctl": what upvmd serves, and
 * changing its budget and a process's limit or share at run time.  Each
 * request is one connection to upvmd's socket (dproto.h).
 * Exit status: 0 done, 1 upvmd refused or is unreachable, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "dproto.h"
#include "run.h"
#include "upvm.h"

#define CTL_MAX_ROWS	1024

struct table {
	struct dm_stat_total	t;
	struct dm_stat_proc	p[CTL_MAX_ROWS];
	int			n;
};

static const char *
ctl_socket(const char *opt)
{
	const char *env = getenv("UPVM_DAEMON");

	if (opt != NULL)
		return opt;
	return env != NULL && *env != '\0' ? env : DPROTO_DEFAULT_SOCKET;
}

static int
ctl_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		run_die(2, "the socket path %s is too long", path);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		run_die(1, "cannot reach upvmd at %s: %s; is it running "
		    "(upvmd, or systemctl start upvmd.socket)? --socket or "
		    "UPVM_DAEMON name another", path, strerror(errno));
	return fd;
}

/* one answer: its type (DM_ERROR dies with its text) */
static int
ctl_recv(int fd, void *buf)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	const char *why;
	ssize_t n;
	int type;

	if (poll(&pfd, 1, 5000) <= 0)
		run_die(1, "upvmd did not answer within 5 s");
	n = recv(fd, buf, DPROTO_MAX_MSG, 0);
	if (n <= 0)
		run_die(1, "upvmd closed the connection");
	if ((type = dproto_check(buf, (size_t)n, &why)) < 0)
		run_die(1, "a broken answer from upvmd: %s", why);
	if (type == DM_ERROR)
		run_die(1, "upvmd: %s", ((struct dm_error *)buf)->text);
	return type;
}

static void
ctl_table(const char *sock, int pid, struct table *tb)
{
	union {
		struct dm_hdr		h;
		struct dm_stat_proc	p;
		struct dm_stat_total	t;
		char			buf[DPROTO_MAX_MSG];
	} in;
	struct dm_ctl_stat req;
	int fd = ctl_connect(sock), type;

	dproto_init(&req, DM_CTL_STAT);
	req.pid = pid;
	if (dproto_send(fd, &req) != 0)
		run_die(1, "cannot send to upvmd: %s", strerror(errno));
	tb->n = 0;
	while ((type = ctl_recv(fd, &in)) == DM_STAT_PROC)
		if (tb->n < CTL_MAX_ROWS)
			tb->p[tb->n++] = in.p;
	if (type != DM_STAT_TOTAL)
		run_die(1, "upvmd sent a %s where the totals belong",
		    dproto_name((unsigned)type));
	tb->t = in.t;
	close(fd);
}

static double mib(uint64_t pages) { return (double)pages * 4096 / 1048576; }

static void
ctl_print(FILE *f, const struct table *tb)
{
	const struct dm_stat_total *t = &tb->t;

	fprintf(f, "upvmd: budget %.0f MiB, granted %.0f, resident %.0f (peak "
	    "%.0f), swapped %.0f MiB; %u processes, %llu attached and %llu "
	    "died since start, up %.0f s\n", mib(t->budget), mib(t->granted),
	    mib(t->resident), mib(t->peak), mib(t->swapped), t->nprocs,
	    (unsigned long long)t->attaches, (unsigned long long)t->crashes,
	    t->uptime_s);
	fprintf(f, "total: %.0f faults/s, %.0f pageins/s, %.0f pageouts/s\n\n",
	    t->faults_ps, t->pageins_ps, t->pageouts_ps);
	fprintf(f, "%7s %-15s %8s %8s %7s %5s %8s %9s %8s %8s %6s %6s %7s\n",
	    "PID", "COMMAND", "RES MiB", "BUDGET", "LIMIT", "SHARE",
	    "SWAP MiB", "FAULTS/s", "IN/s", "OUT/s", "P50us", "P99us",
	    "CPU s");
	for (int i = 0; i < tb->n; i++) {
		const struct dm_stat_proc *p = &tb->p[i];
		char limit[16];

		if (p->limit == 0)
			strcpy(limit, "-");
		else
			snprintf(limit, sizeof(limit), "%.0f", mib(p->limit));
		fprintf(f, "%7d %-15s %8.1f %8.1f %7s %5u %8.1f %9.0f %8.0f "
		    "%8.0f %6llu %6llu %7.2f\n", p->pid, p->comm,
		    mib(p->resident), mib(p->grant), limit, p->share,
		    mib(p->swapped), p->faults_ps, p->pageins_ps,
		    p->pageouts_ps, (unsigned long long)p->lat_p50_us,
		    (unsigned long long)p->lat_p99_us,
		    (double)p->cpu_ns / 1e9);
	}
}

static void
ctl_json(FILE *f, const struct table *tb)
{
	const struct dm_stat_total *t = &tb->t;

	fprintf(f, "{\"budget_pages\": %llu, \"granted_pages\": %llu, "
	    "\"resident_pages\": %llu, \"peak_pages\": %llu, "
	    "\"swapped_pages\": %llu, \"nprocs\": %u, \"attaches\": %llu, "
	    "\"crashes\": %llu, \"faults_ps\": %.1f, \"pageins_ps\": %.1f, "
	    "\"pageouts_ps\": %.1f, \"uptime_s\": %.1f, \"page_size\": %u, "
	    "\"procs\": [", (unsigned long long)t->budget,
	    (unsigned long long)t->granted, (unsigned long long)t->resident,
	    (unsigned long long)t->peak, (unsigned long long)t->swapped,
	    t->nprocs, (unsigned long long)t->attaches,
	    (unsigned long long)t->crashes, t->faults_ps, t->pageins_ps,
	    t->pageouts_ps, t->uptime_s, t->page_size);
	for (int i = 0; i < tb->n; i++) {
		const struct dm_stat_proc *p = &tb->p[i];

		/* comm: the kernel's name; quote-escape what JSON needs */
		fprintf(f, "%s{\"pid\": %d, \"uid\": %u, \"comm\": \"",
		    i > 0 ? ", " : "", p->pid, p->uid);
		for (const char *s = p->comm; *s != '\0'; s++)
			fprintf(f, (*s == '"' || *s == '\\') ? "\\%c" :
			    (unsigned char)*s < 0x20 ? "?" : "%c", *s);
		fprintf(f, "\", \"resident_pages\": %llu, \"peak_pages\": %llu, "
		    "\"swapped_pages\": %llu, \"budget_pages\": %llu, "
		    "\"limit_pages\": %llu, \"share\": %u, \"faults\": %llu, "
		    "\"pageins\": %llu, \"pageouts\": %llu, \"faults_ps\": %.1f, "
		    "\"pageins_ps\": %.1f, \"pageouts_ps\": %.1f, "
		    "\"latency_p50_us\": %llu, \"latency_p99_us\": %llu, "
		    "\"cpu_s\": %.3f, \"attached_s\": %.1f}",
		    (unsigned long long)p->resident,
		    (unsigned long long)p->peak,
		    (unsigned long long)p->swapped,
		    (unsigned long long)p->grant,
		    (unsigned long long)p->limit, p->share,
		    (unsigned long long)p->faults,
		    (unsigned long long)p->pageins,
		    (unsigned long long)p->pageouts, p->faults_ps,
		    p->pageins_ps, p->pageouts_ps,
		    (unsigned long long)p->lat_p50_us,
		    (unsigned long long)p->lat_p99_us,
		    (double)p->cpu_ns / 1e9, p->attached_s);
	}
	fprintf(f, "]}\n");
}

static int
ctl_pid(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
		run_die(2, "%s is not a process id", s);
	return (int)v;
}

static struct table ctl_tb;	/* big: not on the stack */

int
stat_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *sock = NULL;
	bool json = false;
	int o, pid = 0;

	run_prog = "upvm stat";
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (o) {
		case 'j': json = true; break;
		case 's': sock = optarg; break;
		case 'h':
			printf("usage: upvm stat [PID] [--json] [--socket "
			    "PATH]\nupvmd's budget and, per process attached "
			    "(a user sees their own, root all),\nits resident "
			    "and swapped memory, budget, rates and fault "
			    "latency.\n");
			return 0;
		default:
			run_die(2, "unknown option %s; see upvm stat --help",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		pid = ctl_pid(argv[optind++]);
	if (optind < argc)
		run_die(2, "unexpected argument %s", argv[optind]);
	ctl_table(ctl_socket(sock), pid, &ctl_tb);
	if (json)
		ctl_json(stdout, &ctl_tb);
	else
		ctl_print(stdout, &ctl_tb);
	return 0;
}

static struct termios top_saved;
static bool top_raw;

static void
top_restore(void)
{
	if (top_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &top_saved);
	top_raw = false;
}

static void
top_signal(int sig)
{
	top_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int
top_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *sock = NULL;
	double delay = 1;
	long iters = -1;
	bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	int o;

	run_prog = "upvm top";
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+d:n:h", lo, NULL)) != -1) {
		switch (o) {
		case 's': sock = optarg; break;
		case 'd':
			delay = atof(optarg);
			if (delay < 0.1 || delay > 3600)
				run_die(2, "--delay takes 0.1 to 3600 seconds");
			break;
		case 'n':
			iters = atol(optarg);
			if (iters <= 0)
				run_die(2, "--iterations takes a positive "
				    "number");
			break;
		case 'h':
			printf("usage: upvm top [-d SECONDS] [-n ITERATIONS] "
			    "[--socket PATH]\nupvm stat, refreshed every "
			    "SECONDS (1); q quits.\n");
			return 0;
		default:
			run_die(2, "unknown option %s; see upvm top --help",
			    argv[optind - 1]);
		}
	}
	if (tty && tcgetattr(STDIN_FILENO, &top_saved) == 0) {
		struct termios raw = top_saved;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) {
			top_raw = true;
			atexit(top_restore);
			signal(SIGINT, top_signal);
			signal(SIGTERM, top_signal);
		}
	}
	for (long i = 0; iters < 0 || i < iters; i++) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		char key;

		ctl_table(ctl_socket(sock), 0, &ctl_tb);
		if (tty)
			fputs("\033[H\033[J", stdout);
		ctl_print(stdout, &ctl_tb);
		if (!tty)
			fputc('\n', stdout);
		fflush(stdout);
		if (iters > 0 && i + 1 == iters)
			break;
		if (poll(&pfd, top_raw ? 1 : 0, (int)(delay * 1000)) > 0 &&
		    read(STDIN_FILENO, &key, 1) == 1 && (key == 'q' ||
		    key == 'Q'))
			break;
	}
	top_restore();
	return 0;
}

static void
ctl_send_ok(const char *sock, const void *msg)
{
	char in[DPROTO_MAX_MSG];
	int fd = ctl_connect(sock);

	if (dproto_send(fd, msg) != 0)
		run_die(1, "cannot send to upvmd: %s", strerror(errno));
	if (ctl_recv(fd, in) != DM_OK)
		run_die(1, "upvmd gave an unexpected answer");
	close(fd);
}

static uint64_t
ctl_size(const char *s, const char *what)
{
	uint64_t b;

	if (upvm_parse_size(s, &b) != 0)
		run_die(2, "%s: %s is not a size (such as 512M or 4G)", what,
		    s);
	return b;
}

int
ctl_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *sock = NULL, *what;
	int o;

	run_prog = "upvm ctl";
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (o) {
		case 's': sock = optarg; break;
		case 'h':
			printf("usage: upvm ctl [--socket PATH] budget SIZE\n"
			    "       upvm ctl [--socket PATH] limit PID "
			    "SIZE|none\n"
			    "       upvm ctl [--socket PATH] share PID 1..1000\n"
			    "budget: upvmd's total (root only); limit: the "
			    "most one process may hold;\nshare: its weight "
			    "when budget follows faults (100 by default).\n");
			return 0;
		default:
			run_die(2, "unknown option %s; see upvm ctl --help",
			    argv[optind - 1]);
		}
	}
	if (optind >= argc)
		run_die(2, "what to change? budget, limit or share; see upvm "
		    "ctl --help");
	what = argv[optind++];
	if (strcmp(what, "budget") == 0 && optind + 1 == argc) {
		struct dm_ctl_budget m;

		dproto_init(&m, DM_CTL_BUDGET);
		m.bytes = ctl_size(argv[optind], "budget");
		if (m.bytes < DPROTO_MIN_BUDGET)
			run_die(2, "budget: at least 4M");
		ctl_send_ok(ctl_socket(sock), &m);
		return 0;
	}
	if ((strcmp(what, "limit") == 0 || strcmp(what, "share") == 0) &&
	    optind + 2 == argc) {
		struct dm_ctl_limit m;

		dproto_init(&m, DM_CTL_LIMIT);
		m.pid = ctl_pid(argv[optind]);
		m.bytes = UINT64_MAX;
		if (strcmp(what, "share") == 0) {
			long v = atol(argv[optind + 1]);

			if (v < 1 || v > DPROTO_MAX_SHARE)
				run_die(2, "share: 1 to 1000");
			m.share = (uint32_t)v;
		} else if (strcmp(argv[optind + 1], "none") == 0) {
			m.bytes = 0;
		} else {
			m.bytes = ctl_size(argv[optind + 1], "limit");
			if (m.bytes < DPROTO_MIN_BUDGET)
				run_die(2, "limit: at least 4M, or none");
		}
		ctl_send_ok(ctl_socket(sock), &m);
		return 0;
	}
	run_die(2, "usage: upvm ctl budget SIZE | limit PID SIZE|none | share "
	    "PID N");
}
