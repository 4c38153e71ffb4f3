/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvmd.c: the paging daemon: one budget for every process attached to
 * it (upvmd(8)).
 *
 * One thread, one poll loop over the listening socket and the
 * connections.  A connection is a process under upvm (it said HELLO:
 * dlink.c is the other end) or a tool (upvm stat/top/ctl: one request at
 * a time).  Every DPROTO_REPORT_MS the broker (broker.h) moves budget
 * between the processes and the changed grants go out.  Who a peer is
 * comes from SO_PEERCRED: a process attaches only itself; a tool sees and
 * changes only its own user's processes, root all of them, and only root
 * changes the budget.  Every message passes dproto_check() first; a
 * broken one gets an error reply, one log line, and the connection closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "dproto.h"
#include "upvm.h"

#define UPVMD_MAX_CONN	(BROKER_MAX + 64)
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define IOERR_LINE_S	10.0	/* seconds between two lines on one
				   client's failed I/O, at least */

enum conn_kind { CK_NEW, CK_PROC, CK_TOOL };

struct conn {
	int		 c_fd;		/* -1: slot free */
	enum conn_kind	 c_kind;
	pid_t		 c_pid;		/* SO_PEERCRED */
	uid_t		 c_uid;
	bool		 c_bye;		/* CK_PROC: it said BYE */
	char		 c_comm[DPROTO_COMM];
	struct bclient	 c_bc;		/* CK_PROC */
	struct dm_report c_last;	/* CK_PROC: the last report */
	double		 c_attached;	/* when (uptime seconds) */
	double		 c_reported;	/* the last report's time */
	struct dm_report c_snap;	/* a report about a second old */
	double		 c_snap_t;
	double		 c_rate[3];	/* faults, pageins, pageouts per s */
	long		 c_sent;	/* the grant last sent */
	struct dm_report c_said;	/* CK_PROC: the counts of its last line
					   on failed I/O */
	double		 c_said_t;	/* that line's time; 0: none yet */
};

static struct {
	const char	*sock;
	bool		 fg;
	int		 verbose;
	struct upvm_config cfg;
	struct broker	 br;
	int		 lfd;
	struct conn	 conn[UPVMD_MAX_CONN];
	int		 nconn;		/* slots in use, up to */
	double		 t0;
	uint64_t	 attaches, crashes;
	uint64_t	 peak;		/* most resident at once, summed */
	bool		 made_socket;	/* unlink it at exit */
	bool		 use_syslog;
} d = { .lfd = -1 };

static volatile sig_atomic_t quit;

static void __attribute__((format(printf, 2, 3)))
say(int prio, const char *fmt, ...)
{
	va_list ap;

	if (prio == LOG_DEBUG && d.verbose == 0)
		return;
	va_start(ap, fmt);
	if (d.use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fputs("upvmd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - d.t0;
}

static long mib(uint64_t pages) { return (long)((pages * 4096) >> 20); }

/* the processes attached, for the broker */
static int
procs(struct bclient **bc, struct conn **cs)
{
	int n = 0;

	for (int i = 0; i < d.nconn; i++)
		if (d.conn[i].c_fd >= 0 && d.conn[i].c_kind == CK_PROC &&
		    n < BROKER_MAX) {
			if (cs != NULL)
				cs[n] = &d.conn[i];
			bc[n++] = &d.conn[i].c_bc;
		}
	return n;
}

static void
reply_error(struct conn *c, int error, const char *fmt, ...)
{
	struct dm_error e;
	va_list ap;

	dproto_init(&e, DM_ERROR);
	e.error = error;
	va_start(ap, fmt);
	vsnprintf(e.text, sizeof(e.text), fmt, ap);
	va_end(ap);
	(void)dproto_send(c->c_fd, &e);
}

/* the process is alive, and not exiting (PF_EXITING, set before its
   descriptors close; or gone, or a zombie): it exec'ed */
static bool
proc_alive(pid_t pid)
{
	char path[64], buf[512], *st;
	unsigned long flags;
	char state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* after the name: state ppid pgrp session tty_nr tpgid flags */
	if ((st = strrchr(buf, ')')) == NULL || sscanf(st + 1,
	    " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return false;
	return state != 'Z' && state != 'X' && !(flags & 0x4);
}

/*
 * say_io_errors: the client's failed I/Os and lost pages since its last
 * such line, if any, in one line: the first at once, then at most one
 * every IOERR_LINE_S seconds (a failing disk fails every write), and what
 * is left when it goes (conn_close).
 */
static void
say_io_errors(struct conn *c, const struct dm_report *m, double t)
{
	if (m->io_errors <= c->c_said.io_errors &&
	    m->poisoned <= c->c_said.poisoned)
		return;
	say(LOG_ERR, "pid %d (%s): %llu more failed I/Os and %llu more "
	    "pages lost to them (%llu and %llu in all; its own log says "
	    "which)", (int)c->c_pid, c->c_comm,
	    (unsigned long long)(m->io_errors - MIN(m->io_errors,
	    c->c_said.io_errors)), (unsigned long long)(m->poisoned -
	    MIN(m->poisoned, c->c_said.poisoned)),
	    (unsigned long long)m->io_errors,
	    (unsigned long long)m->poisoned);
	c->c_said = *m;
	c->c_said_t = t;
}

static void
conn_close(struct conn *c)
{
	if (c->c_kind == CK_PROC) {
		say_io_errors(c, &c->c_last, now_s());
		if (!c->c_bye && proc_alive(c->c_pid)) {
			say(LOG_INFO, "detach: pid %d (%s) closed its link "
			    "(exec, or upvm stopped); its %ld MiB of budget "
			    "are free again", (int)c->c_pid, c->c_comm,
			    mib((uint64_t)c->c_bc.bc_grant));
		} else if (c->c_bye) {
			say(LOG_INFO, "detach: pid %d (%s); its %ld MiB of "
			    "budget are free again", (int)c->c_pid, c->c_comm,
			    mib((uint64_t)c->c_bc.bc_grant));
		} else {
			d.crashes++;
			say(LOG_WARNING, "pid %d (%s) went away without "
			    "detaching (killed, crashed, or exited without "
			    "upvm_fini); its %ld MiB of budget are free again "
			    "and its swap file went with it", (int)c->c_pid,
			    c->c_comm, mib((uint64_t)c->c_bc.bc_grant));
		}
	}
	close(c->c_fd);
	c->c_fd = -1;
}

/* read /proc/PID/comm: the name the daemon shows is the kernel's */
static void
proc_comm(pid_t pid, char *comm, const char *fallback)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, comm, DPROTO_COMM - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(comm, DPROTO_COMM, "%s", fallback);
		return;
	}
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
}

static void
on_hello(struct conn *c, const struct dm_hello *m)
{
	struct bclient *bc[BROKER_MAX];
	struct dm_welcome w;
	int n;

	if (c->c_kind != CK_NEW) {
		reply_error(c, EPROTO, "hello twice on one connection");
		say(LOG_WARNING, "pid %d: hello twice; closing",
		    (int)c->c_pid);
		conn_close(c);
		return;
	}
	if (m->pid != c->c_pid) {
		reply_error(c, EPERM, "a process attaches only itself: the "
		    "hello names pid %d, the peer is pid %d", (int)m->pid,
		    (int)c->c_pid);
		say(LOG_WARNING, "refused: peer pid %d (uid %u) tried to "
		    "attach pid %d", (int)c->c_pid, (unsigned)c->c_uid,
		    (int)m->pid);
		conn_close(c);
		return;
	}
	if (m->page_size != 4096) {
		reply_error(c, EINVAL, "page size %u: upvmd pages 4096-byte "
		    "pages", m->page_size);
		conn_close(c);
		return;
	}
	n = procs(bc, NULL);
	if (n >= BROKER_MAX) {
		reply_error(c, EUSERS, "upvmd serves %d processes already",
		    BROKER_MAX);
		say(LOG_WARNING, "refused pid %d: %d processes attached",
		    (int)c->c_pid, n);
		conn_close(c);
		return;
	}
	memset(&c->c_bc, 0, sizeof(c->c_bc));
	c->c_bc.bc_share = 100;
	c->c_bc.bc_limit = (long)(m->limit_pages < (uint64_t)LONG_MAX ?
	    m->limit_pages : 0);
	c->c_bc.bc_resident = (long)(m->resident < (uint64_t)LONG_MAX / 2 ?
	    m->resident : 0);
	c->c_bc.bc_grant = broker_admit(&d.br, bc, n, &c->c_bc);
	c->c_sent = c->c_bc.bc_grant;
	proc_comm(c->c_pid, c->c_comm, m->comm);
	c->c_kind = CK_PROC;
	c->c_attached = c->c_reported = c->c_snap_t = now_s();
	memset(&c->c_last, 0, sizeof(c->c_last));
	c->c_snap = c->c_last;
	dproto_init(&w, DM_WELCOME);
	w.grant_pages = (uint64_t)c->c_bc.bc_grant;
	w.budget_pages = (uint64_t)d.br.br_budget;
	w.swap_max = d.cfg.swap_max;
	snprintf(w.swap, sizeof(w.swap), "%s", d.cfg.swap_path);
	snprintf(w.numa, sizeof(w.numa), "%s", d.cfg.numa);
	snprintf(w.node_budget, sizeof(w.node_budget), "%s",
	    d.cfg.node_budget);
	if (dproto_send(c->c_fd, &w) != 0) {
		conn_close(c);
		return;
	}
	d.attaches++;
	say(LOG_INFO, "attach: pid %d (%s), uid %u: budget %ld MiB%s "
	    "(%d processes attached)", (int)c->c_pid, c->c_comm,
	    (unsigned)c->c_uid, mib((uint64_t)c->c_bc.bc_grant),
	    c->c_bc.bc_limit > 0 ? ", limited by itself" : "", n + 1);
}

static void
on_report(struct conn *c, const struct dm_report *m)
{
	double t = now_s(), dt;

	if (c->c_kind != CK_PROC) {
		reply_error(c, EPROTO, "a report before hello");
		say(LOG_WARNING, "pid %d: a report before hello; closing",
		    (int)c->c_pid);
		conn_close(c);
		return;
	}
	if (c->c_said_t == 0 || t - c->c_said_t >= IOERR_LINE_S)
		say_io_errors(c, m, t);
	broker_report(&c->c_bc, (long)(m->resident < (uint64_t)LONG_MAX / 2 ?
	    m->resident : LONG_MAX / 2), m->faults, t - c->c_reported);
	c->c_last = *m;
	c->c_reported = t;
	if ((dt = t - c->c_snap_t) >= 1.0) {
		c->c_rate[0] = (double)(m->faults - c->c_snap.faults) / dt;
		c->c_rate[1] = (double)(m->pageins - c->c_snap.pageins) / dt;
		c->c_rate[2] = (double)(m->pageouts - c->c_snap.pageouts) /
		    dt;
		c->c_snap = *m;
		c->c_snap_t = t;
	}
}

/* a tool may see and change processes of its own user; root, all */
static bool
may_touch(const struct conn *tool, const struct conn *p)
{
	return tool->c_uid == 0 || tool->c_uid == p->c_uid;
}

static void
on_stat(struct conn *c, const struct dm_ctl_stat *m)
{
	struct dm_stat_total t;
	struct dm_stat_proc r;
	double now = now_s();
	int shown = 0;

	dproto_init(&t, DM_STAT_TOTAL);
	for (int i = 0; i < d.nconn; i++) {
		struct conn *p = &d.conn[i];

		if (p->c_fd < 0 || p->c_kind != CK_PROC)
			continue;
		t.nprocs++;
		t.granted += (uint64_t)p->c_bc.bc_grant;
		t.resident += (uint64_t)p->c_bc.bc_resident;
		t.swapped += p->c_last.swapped;
		t.faults_ps += p->c_rate[0];
		t.pageins_ps += p->c_rate[1];
		t.pageouts_ps += p->c_rate[2];
		if ((m->pid != 0 && p->c_pid != m->pid) || !may_touch(c, p))
			continue;
		dproto_init(&r, DM_STAT_PROC);
		r.pid = p->c_pid;
		r.uid = (uint32_t)p->c_uid;
		memcpy(r.comm, p->c_comm, sizeof(r.comm));
		r.resident = (uint64_t)p->c_bc.bc_resident;
		r.peak = p->c_last.peak;
		r.swapped = p->c_last.swapped;
		r.grant = (uint64_t)p->c_bc.bc_grant;
		r.limit = (uint64_t)p->c_bc.bc_limit;
		r.share = p->c_bc.bc_share;
		r.faults = p->c_last.faults;
		r.pageins = p->c_last.pageins;
		r.pageouts = p->c_last.pageouts;
		r.faults_ps = p->c_rate[0];
		r.pageins_ps = p->c_rate[1];
		r.pageouts_ps = p->c_rate[2];
		r.lat_p50_us = p->c_last.lat_p50_us;
		r.lat_p99_us = p->c_last.lat_p99_us;
		r.cpu_ns = p->c_last.cpu_ns;
		r.attached_s = now - p->c_attached;
		if (dproto_send(c->c_fd, &r) != 0)
			return;
		shown++;
	}
	if (m->pid != 0 && shown == 0) {
		reply_error(c, ESRCH, "pid %d is not attached to upvmd%s",
		    (int)m->pid, c->c_uid != 0 ? " (or is another user's)" :
		    "");
		return;
	}
	t.budget = (uint64_t)d.br.br_budget;
	t.peak = d.peak;
	t.page_size = 4096;
	t.attaches = d.attaches;
	t.crashes = d.crashes;
	t.uptime_s = now;
	(void)dproto_send(c->c_fd, &t);
}

static void
reply_ok(struct conn *c)
{
	struct dm_hdr ok;

	dproto_init(&ok, DM_OK);
	(void)dproto_send(c->c_fd, &ok);
}

static void
on_budget(struct conn *c, const struct dm_ctl_budget *m)
{
	long old = d.br.br_budget;

	if (c->c_uid != 0) {
		reply_error(c, EPERM, "only root changes upvmd's budget");
		say(LOG_WARNING, "refused: uid %u (pid %d) tried to change the "
		    "budget", (unsigned)c->c_uid, (int)c->c_pid);
		return;
	}
	d.br.br_budget = (long)(m->bytes / 4096);
	d.cfg.budget = m->bytes;
	say(LOG_NOTICE, "budget %ld MiB -> %ld MiB (by pid %d)",
	    mib((uint64_t)old), mib((uint64_t)d.br.br_budget), (int)c->c_pid);
	reply_ok(c);
}

static void
on_limit(struct conn *c, const struct dm_ctl_limit *m)
{
	for (int i = 0; i < d.nconn; i++) {
		struct conn *p = &d.conn[i];

		if (p->c_fd < 0 || p->c_kind != CK_PROC || p->c_pid != m->pid)
			continue;
		if (!may_touch(c, p))
			break;
		if (m->bytes != UINT64_MAX)
			p->c_bc.bc_limit = m->bytes == 0 ? 0 :
			    (long)((m->bytes + 4095) / 4096);
		if (m->share != 0)
			p->c_bc.bc_share = m->share;
		say(LOG_NOTICE, "pid %d (%s): limit %s%ld MiB, share %u (by "
		    "pid %d)", (int)p->c_pid, p->c_comm,
		    p->c_bc.bc_limit == 0 ? "none, " : "",
		    mib((uint64_t)p->c_bc.bc_limit), p->c_bc.bc_share,
		    (int)c->c_pid);
		reply_ok(c);
		return;
	}
	reply_error(c, ESRCH, "pid %d is not attached to upvmd%s",
	    (int)m->pid, c->c_uid != 0 ? " (or is another user's)" : "");
}

/* a tool's request: the connection becomes a tool's, if it was new */
static bool
tool_ok(struct conn *c, const char *what)
{
	if (c->c_kind == CK_PROC) {
		reply_error(c, EPROTO, "%s on a process's connection", what);
		say(LOG_WARNING, "pid %d: %s on a process's connection; "
		    "closing", (int)c->c_pid, what);
		conn_close(c);
		return false;
	}
	c->c_kind = CK_TOOL;
	return true;
}

static void
on_message(struct conn *c)
{
	union {
		struct dm_hdr		h;
		struct dm_hello		hello;
		struct dm_report	report;
		struct dm_ctl_stat	stat;
		struct dm_ctl_budget	budget;
		struct dm_ctl_limit	limit;
		char			buf[DPROTO_MAX_MSG];
	} m;
	const char *why = NULL;
	ssize_t n;
	int type;

	n = recv(c->c_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	type = (size_t)n > sizeof(m) ? -EPROTO : dproto_check(&m, (size_t)n,
	    &why);
	switch (type) {
	case DM_HELLO:
		on_hello(c, &m.hello);
		return;
	case DM_REPORT:
		on_report(c, &m.report);
		return;
	case DM_BYE:
		if (c->c_kind == CK_PROC) {
			c->c_bye = true;
			return;
		}
		why = "bye before hello";
		break;
	case DM_CTL_STAT:
		if (tool_ok(c, "stat"))
			on_stat(c, &m.stat);
		return;
	case DM_CTL_BUDGET:
		if (tool_ok(c, "budget"))
			on_budget(c, &m.budget);
		return;
	case DM_CTL_LIMIT:
		if (tool_ok(c, "limit"))
			on_limit(c, &m.limit);
		return;
	default:
		break;
	}
	if (why == NULL)
		why = type < 0 ? "too long" : "a message only upvmd sends";
	reply_error(c, EPROTO, "broken message: %s", why);
	say(LOG_WARNING, "pid %d (uid %u): broken message (%s, %zd bytes); "
	    "closing its connection", (int)c->c_pid, (unsigned)c->c_uid, why,
	    n);
	conn_close(c);
}

static void
on_accept(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c = NULL;
	int fd;

	fd = accept4(d.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < UPVMD_MAX_CONN && c == NULL; i++)
		if (i >= d.nconn || d.conn[i].c_fd < 0) {
			c = &d.conn[i];
			if (i >= d.nconn)
				d.nconn = i + 1;
		}
	if (c == NULL || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
	    &len) != 0) {
		say(LOG_WARNING, "a connection refused: %s", c == NULL ?
		    "too many connections" : strerror(errno));
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->c_fd = fd;
	c->c_kind = CK_NEW;
	c->c_pid = cred.pid;
	c->c_uid = cred.uid;
	snprintf(c->c_comm, sizeof(c->c_comm), "?");
}

/* every tick: move budget, send what changed, note the sum */
static void
tick(void)
{
	struct bclient *bc[BROKER_MAX];
	struct conn *cs[BROKER_MAX];
	uint64_t sum = 0;
	int n = procs(bc, cs);

	broker_tick(&d.br, bc, n);
	for (int i = 0; i < n; i++) {
		struct dm_grant g;

		sum += (uint64_t)cs[i]->c_bc.bc_resident;
		if (cs[i]->c_bc.bc_grant == cs[i]->c_sent)
			continue;
		dproto_init(&g, DM_GRANT);
		g.grant_pages = (uint64_t)cs[i]->c_bc.bc_grant;
		if (dproto_send(cs[i]->c_fd, &g) == 0)
			cs[i]->c_sent = cs[i]->c_bc.bc_grant;
		say(LOG_DEBUG, "pid %d: budget %ld MiB (target %ld, resident "
		    "%ld, demand %.0f/s)", (int)cs[i]->c_pid,
		    mib((uint64_t)cs[i]->c_bc.bc_grant),
		    mib((uint64_t)cs[i]->c_bc.bc_target),
		    mib((uint64_t)cs[i]->c_bc.bc_resident),
		    cs[i]->c_bc.bc_demand);
	}
	if (sum > d.peak)
		d.peak = sum;
}

/* socket activation (sd_listen_fds without libsystemd): fd 3 */
static int
activated_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atoi(pid) != (int)getpid())
		return -1;
	if (atoi(fds) != 1) {
		say(LOG_ERR, "socket activation passed %s sockets; upvmd takes "
		    "one (upvmd.socket)", fds);
		exit(1);
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

static int
listen_on(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)], *slash;
	struct group *gr;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		say(LOG_ERR, "the socket path %s is longer than %zu bytes; "
		    "choose a shorter one (--socket)", path,
		    sizeof(sun.sun_path) - 1);
		return -1;
	}
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			say(LOG_ERR, "cannot make the directory %s: %s; make "
			    "it or choose another --socket", dir,
			    strerror(errno));
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		say(LOG_ERR, "socket: %s", strerror(errno));
		return -1;
	}
	/* a socket left by a upvmd that died; one that answers is alive */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		say(LOG_ERR, "another upvmd listens on %s; stop it or choose "
		    "another --socket", path);
		close(fd);
		return -1;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	(void)unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 64) != 0) {
		say(LOG_ERR, "cannot listen on %s: %s; choose another "
		    "--socket", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	d.made_socket = true;
	/* 0660, group upvm where it exists: its members may attach */
	if ((gr = getgrnam("upvm")) != NULL)
		(void)!chown(path, 0, gr->gr_gid);
	(void)chmod(path, 0660);
	return fd;
}

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: upvmd [--socket PATH] [--budget SIZE|PCT] [--swap DIR|URL] "
	    "[--swap-max SIZE]\n"
	    "             [--numa POLICY] [--node-budget LIST] [--foreground] "
	    "[-v]\n"
	    "One paging budget for every process attached to it (upvm run "
	    "--daemon, UPVM_DAEMON).\n"
	    "Defaults from the UPVM_* variables; socket %s.\n",
	    DPROTO_DEFAULT_SOCKET);
	exit(status);
}

/* the options become UPVM_* variables: one parser checks them all */
static void
options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "budget", required_argument, NULL, 'b' },
		{ "swap", required_argument, NULL, 'w' },
		{ "swap-max", required_argument, NULL, 'm' },
		{ "numa", required_argument, NULL, 'n' },
		{ "node-budget", required_argument, NULL, 'N' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int o;

	d.sock = DPROTO_DEFAULT_SOCKET;
	unsetenv("UPVM_DAEMON");
	while ((o = getopt_long(argc, argv, "fvh", lo, NULL)) != -1) {
		switch (o) {
		case 's': d.sock = optarg; break;
		case 'b': setenv("UPVM_BUDGET", optarg, 1); break;
		case 'w': setenv("UPVM_SWAP", optarg, 1); break;
		case 'm': setenv("UPVM_SWAP_MAX", optarg, 1); break;
		case 'n': setenv("UPVM_NUMA", optarg, 1); break;
		case 'N': setenv("UPVM_NODE_BUDGET", optarg, 1); break;
		case 'f': d.fg = true; break;
		case 'v': d.verbose++; break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "upvmd: unexpected argument %s\n",
		    argv[optind]);
		usage(2);
	}
	if (upvm_config_from_env(&d.cfg) != 0)
		exit(2);	/* the runtime's parser said what */
	if (d.cfg.budget == 0) {
		fprintf(stderr, "upvmd: a budget is needed: --budget SIZE or "
		    "PERCENT (or UPVM_BUDGET)\n");
		exit(2);
	}
	if (d.cfg.budget < DPROTO_MIN_BUDGET) {
		fprintf(stderr, "upvmd: a budget of at least 4M is needed\n");
		exit(2);
	}
	d.br.br_budget = (long)(d.cfg.budget / 4096);
}

int
main(int argc, char **argv)
{
	struct pollfd pfd[UPVMD_MAX_CONN + 1];
	double next;

	d.t0 = 0;
	d.t0 = now_s();
	options(argc, argv);
	if (!d.fg && getenv("INVOCATION_ID") == NULL) {
		/* detach; logs go to syslog (the journal) */
		if (daemon(0, 0) != 0) {
			perror("upvmd: daemon");
			return 1;
		}
		d.use_syslog = true;
		openlog("upvmd", LOG_PID, LOG_DAEMON);
	}
	if ((d.lfd = activated_fd()) < 0 && (d.lfd = listen_on(d.sock)) < 0)
		return 1;
	for (int i = 0; i < UPVMD_MAX_CONN; i++)
		d.conn[i].c_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &(struct sigaction){ .sa_handler = on_signal },
	    NULL);
	sigaction(SIGINT, &(struct sigaction){ .sa_handler = on_signal },
	    NULL);
	say(LOG_INFO, "serving %s: budget %ld MiB", d.made_socket ? d.sock :
	    "the socket systemd passed", mib((uint64_t)d.br.br_budget));
	next = now_s() + DPROTO_REPORT_MS / 1000.0;
	while (!quit) {
		int n = 0, map[UPVMD_MAX_CONN + 1], wait_ms;

		pfd[n++] = (struct pollfd){ .fd = d.lfd, .events = POLLIN };
		for (int i = 0; i < d.nconn; i++)
			if (d.conn[i].c_fd >= 0) {
				map[n] = i;
				pfd[n++] = (struct pollfd){
				    .fd = d.conn[i].c_fd, .events = POLLIN };
			}
		wait_ms = (int)((next - now_s()) * 1000) + 1;
		if (poll(pfd, (nfds_t)n, wait_ms > 0 ? wait_ms : 0) < 0 &&
		    errno != EINTR) {
			say(LOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		for (int k = 1; k < n; k++)
			if (pfd[k].revents != 0 && d.conn[map[k]].c_fd >= 0)
				on_message(&d.conn[map[k]]);
		if (pfd[0].revents & POLLIN)
			on_accept();
		if (now_s() >= next) {
			tick();
			next = now_s() + DPROTO_REPORT_MS / 1000.0;
		}
	}
	{
		struct bclient *bc[BROKER_MAX];

		say(LOG_INFO, "exiting: %d processes detached; they keep their "
		    "budgets and attach again when upvmd is back",
		    procs(bc, NULL));
	}
	for (int i = 0; i < d.nconn; i++)
		if (d.conn[i].c_fd >= 0)
			close(d.conn[i].c_fd);
	if (d.made_socket)
		(void)unlink(d.sock);
	return 0;
}
