/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procs.c: upvm-bench --procs N, the mechanism: N processes at once, each
 * with a region of its own, and the upvmd they attach to in the upvmd mode.
 *
 * A run forks N children of upvm-bench itself (no exec: the workload
 * tables and the prepared page orders come with the fork, and upvm is
 * started only in the children, so the parent stays single-threaded and
 * its fork clean).  Each child sets itself up (bench.c's callback: join
 * the kernel-swap cgroup, or start upvm with a budget of its own or
 * attached to upvmd, and map its region), says READY through its pipe and
 * waits for the start: the parent closes the start pipe once all N are
 * ready, so the timed phases begin together.  Each child then runs the
 * workload and sends its DONE message: its samples, its result and the
 * CLOCK_MONOTONIC times (one clock for every process) around its timed
 * phase.  Meanwhile the parent samples the sum of the children's RssAnon
 * every RSS_SAMPLE_MS: the figure to hold against the one budget.
 *
 * A child that fails sends DONE with its error and a line saying why; one
 * that dies sends nothing (EOF): the run fails, naming it and its signal
 * (SIGKILL: the cgroup's OOM killer, most likely).  A run that fails, or
 * is interrupted (the tick's error), kills the children that are left.
 *
 * Ownership: everything here belongs to the parent's main thread; a
 * child touches only procs_ready() and its own pipe ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define RSS_SAMPLE_MS	50	/* the RssAnon sum's sampling period */
#define DAEMON_WAIT_S	10	/* for upvmd to say it serves */
#define DAEMON_STOP_S	5	/* for upvmd to go after SIGTERM */

enum { PM_READY = 1, PM_DONE = 2 };

/* One child of a run, as the parent sees it. */
struct child {
	pid_t		ch_pid;		/* 0: reaped */
	int		ch_rfd;		/* its messages, -1: closed */
	int		ch_statfd;	/* /proc/PID/status, -1: none */
	size_t		ch_got;		/* bytes of ch_msg read */
	bool		ch_done;
	struct procs_msg ch_msg;
};

static struct child *kids;		/* the run's children, or NULL */
static unsigned nkids;
static int go_rfd = -1;			/* child: the start pipe's end */

/* The upvmd of the upvmd mode. */
static struct {
	pid_t	pd_pid;			/* 0: none */
	pid_t	pd_owner;		/* who started it */
	char	pd_dir[PATH_MAX - 32];	/* its directory, "": none */
	char	pd_sock[PATH_MAX];
	char	pd_log[PATH_MAX];
} pd;

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* write_msg: m, as a message of its kind, to the parent through fd */
static void
write_msg(int fd, struct procs_msg *m, int kind)
{
	m->pm_kind = kind;
	(void)write_all(fd, m, sizeof(*m));
}

static int child_wfd = -1;		/* child: its message pipe */

/*
 * procs_ready: in a child, once it is set up: tell the parent and wait
 * until every child is (the parent closes the start pipe).
 * => 0, or -ECANCELED if the parent went away or gave up.
 */
int
procs_ready(void)
{
	struct procs_msg m = { 0 };
	char c;
	ssize_t n;

	write_msg(child_wfd, &m, PM_READY);
	while ((n = read(go_rfd, &c, 1)) < 0 && errno == EINTR)
		;
	close(go_rfd);
	go_rfd = -1;
	/* EOF is the start; a byte means give up */
	return n == 0 ? 0 : -ECANCELED;
}

/* procs_mark: in a child, the time its timed phase starts or ends. */
void
procs_mark(struct procs_msg *m)
{
	if (m->pm_t0_ns == 0)
		m->pm_t0_ns = mono_ns();
	else
		m->pm_t1_ns = mono_ns();
}

/* kill_kids: SIGKILL every child not reaped yet, and reap it. */
static void
kill_kids(void)
{
	for (unsigned i = 0; i < nkids; i++) {
		if (kids[i].ch_pid <= 0)
			continue;
		kill(kids[i].ch_pid, SIGKILL);
		while (waitpid(kids[i].ch_pid, NULL, 0) < 0 && errno == EINTR)
			;
		kids[i].ch_pid = 0;
	}
}

static void
free_kids(void)
{
	kill_kids();
	for (unsigned i = 0; kids != NULL && i < nkids; i++) {
		if (kids[i].ch_rfd >= 0)
			close(kids[i].ch_rfd);
		if (kids[i].ch_statfd >= 0)
			close(kids[i].ch_statfd);
	}
	free(kids);
	kids = NULL;
	nkids = 0;
}

/*
 * spawn: fork child i, which runs fn and exits; the parent keeps the read
 * end of its message pipe.  go[0] is the start pipe's read end.
 */
static int
spawn(unsigned i, int go[2], procs_child_fn fn, void *arg)
{
	struct child *ch = &kids[i];
	char path[64];
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		struct procs_msg m = { 0 };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		close(go[1]);
		for (unsigned j = 0; j < i; j++)
			close(kids[j].ch_rfd);
		child_wfd = fds[1];
		go_rfd = go[0];
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		fn(i, arg, &m);
		write_msg(child_wfd, &m, PM_DONE);
		_exit(0);
	}
	close(fds[1]);
	ch->ch_pid = pid;
	ch->ch_rfd = fds[0];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ch->ch_statfd = open(path, O_RDONLY | O_CLOEXEC);
	return 0;
}

/*
 * take: read what child ch has sent.  => 1 when a message is complete,
 * 0 for more to come, -EPIPE at EOF before one was.
 */
static int
take(struct child *ch)
{
	ssize_t n;

	n = read(ch->ch_rfd, (char *)&ch->ch_msg + ch->ch_got,
	    sizeof(ch->ch_msg) - ch->ch_got);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -EPIPE;
	if (n == 0)
		return -EPIPE;
	ch->ch_got += (size_t)n;
	if (ch->ch_got < sizeof(ch->ch_msg))
		return 0;
	ch->ch_got = 0;
	return 1;
}

/* died: why child i ended without its result, into why. */
static void
died(unsigned i, char *why, size_t len)
{
	int status = 0;

	while (waitpid(kids[i].ch_pid, &status, 0) < 0 && errno == EINTR)
		;
	kids[i].ch_pid = 0;
	if (WIFSIGNALED(status))
		snprintf(why, len, "process %u of the run was killed by signal "
		    "%d%s", i + 1, WTERMSIG(status), WTERMSIG(status) ==
		    SIGKILL ? " (the cgroup's OOM killer?)" : "");
	else
		snprintf(why, len, "process %u of the run exited (status %d) "
		    "without a result", i + 1, WIFEXITED(status) ?
		    WEXITSTATUS(status) : -1);
}

/* rss_sum: the children's RssAnon, summed (0 for one that is gone). */
static uint64_t
rss_sum(void)
{
	uint64_t sum = 0, b;

	for (unsigned i = 0; i < nkids; i++)
		if (kids[i].ch_statfd >= 0 && rss_anon(kids[i].ch_statfd,
		    &b) == 0)
			sum += b;
	return sum;
}

/*
 * wait_kids: read the children's messages until every one is done, the
 * start pipe's write end closed once all are ready.  Samples the RssAnon
 * sum and calls tick every RSS_SAMPLE_MS.
 */
static int
wait_kids(int *gow, int (*tick)(void), uint64_t *rss_max, char *why,
    size_t len)
{
	struct pollfd *pfd;
	unsigned i, nready = 0, ndone = 0;
	uint64_t last = 0, now;
	int error = 0, r;

	if ((pfd = calloc(nkids, sizeof(*pfd))) == NULL)
		return -ENOMEM;
	while (ndone < nkids && error == 0) {
		for (i = 0; i < nkids; i++)
			pfd[i] = (struct pollfd){ .fd = kids[i].ch_done ? -1 :
			    kids[i].ch_rfd, .events = POLLIN };
		if (poll(pfd, nkids, RSS_SAMPLE_MS) < 0 && errno != EINTR) {
			error = -errno;
			break;
		}
		if ((now = mono_ns()) - last >= RSS_SAMPLE_MS * 1000000ULL) {
			uint64_t s = rss_sum();

			*rss_max = s > *rss_max ? s : *rss_max;
			last = now;
			if (tick != NULL && (error = tick()) != 0)
				break;
		}
		for (i = 0; i < nkids && error == 0; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if ((r = take(&kids[i])) < 0) {
				died(i, why, len);
				error = -ECHILD;
			} else if (r > 0 && kids[i].ch_msg.pm_kind == PM_READY) {
				if (++nready == nkids) {
					close(*gow);	/* go */
					*gow = -1;
				}
			} else if (r > 0) {
				kids[i].ch_done = true;
				ndone++;
				if (kids[i].ch_msg.pm_error != 0) {
					snprintf(why, len, "process %u of the "
					    "run: %s", i + 1,
					    kids[i].ch_msg.pm_why);
					error = kids[i].ch_msg.pm_error;
				}
			}
		}
	}
	free(pfd);
	return error;
}

/*
 * procs_run: see bench.h.
 */
int
procs_run(unsigned n, procs_child_fn fn, void *arg, int (*tick)(void),
    struct procs_msg *out, uint64_t *rss_max, char *why, size_t len)
{
	int go[2] = { -1, -1 }, error = 0;
	unsigned i;

	*rss_max = 0;
	if ((kids = calloc(n, sizeof(*kids))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		kids[i].ch_rfd = kids[i].ch_statfd = -1;
	if (pipe2(go, O_CLOEXEC) < 0) {
		error = -errno;
		snprintf(why, len, "pipe: %s", strerror(-error));
		goto out;
	}
	fflush(NULL);	/* nothing buffered may be written twice */
	for (nkids = 0; nkids < n; nkids++)
		if ((error = spawn(nkids, go, fn, arg)) != 0) {
			snprintf(why, len, "fork: %s", strerror(-error));
			goto out;
		}
	close(go[0]);
	go[0] = -1;
	if ((error = wait_kids(&go[1], tick, rss_max, why, len)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		out[i] = kids[i].ch_msg;
		while (waitpid(kids[i].ch_pid, NULL, 0) < 0 && errno == EINTR)
			;
		kids[i].ch_pid = 0;
	}
out:
	if (go[1] >= 0 && error != 0) {
		/* children still waiting for the start give up */
		if (write(go[1], "x", 1) < 0) {
			/* they are killed below anyway */
		}
	}
	for (i = 0; i < 2; i++)
		if (go[i] >= 0)
			close(go[i]);
	free_kids();
	return error;
}

/* log_tail: the last line of upvmd's log, into buf. */
static void
log_tail(char *buf, size_t len)
{
	char line[512];
	FILE *f;

	snprintf(buf, len, "(no log)");
	if ((f = fopen(pd.pd_log, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '\0')
			snprintf(buf, len, "%s", line);
	}
	fclose(f);
}

/* log_says: whether upvmd's log has a line containing s. */
static bool
log_says(const char *s)
{
	char line[512];
	bool found = false;
	FILE *f;

	if ((f = fopen(pd.pd_log, "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

/*
 * procs_daemon_start: see bench.h.  upvmd runs in the foreground, its
 * stderr into a log in a fresh directory under dir, beside its socket; it
 * serves once its log says so.
 */
int
procs_daemon_start(const char *upvmd, uint64_t budget, const char *swapdir,
    char *why, size_t len)
{
	char bud[32], tail[512];
	uint64_t t0;
	pid_t pid;
	int fd, status;

	if (snprintf(pd.pd_dir, sizeof(pd.pd_dir), "%s/upvm-bench.XXXXXX",
	    swapdir) >= (int)sizeof(pd.pd_dir) || mkdtemp(pd.pd_dir) == NULL) {
		snprintf(why, len, "a directory for its socket in %s (%s); give "
		    "a writable --swap-dir", swapdir, strerror(errno));
		pd.pd_dir[0] = '\0';
		return -EIO;
	}
	pd.pd_owner = getpid();
	snprintf(pd.pd_sock, sizeof(pd.pd_sock), "%s/upvmd.sock", pd.pd_dir);
	snprintf(pd.pd_log, sizeof(pd.pd_log), "%s/upvmd.log", pd.pd_dir);
	snprintf(bud, sizeof(bud), "%llu", (unsigned long long)budget);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		procs_daemon_stop();
		return -EAGAIN;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		fd = open(pd.pd_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		signal(SIGINT, SIG_IGN);	/* the parent stops it */
		execlp(upvmd, upvmd, "--socket", pd.pd_sock, "--budget", bud,
		    "--swap", swapdir, "--foreground", (char *)NULL);
		dprintf(STDERR_FILENO, "upvm-bench: cannot run %s: %s\n",
		    upvmd, strerror(errno));
		_exit(127);
	}
	pd.pd_pid = pid;
	for (t0 = mono_ns(); !log_says("serving "); ) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			pd.pd_pid = 0;
			log_tail(tail, sizeof(tail));
			snprintf(why, len, "upvmd (%s) to start, but it exited: "
			    "%s; give its path with --upvmd", upvmd, tail);
			procs_daemon_stop();
			return -ECHILD;
		}
		if (mono_ns() - t0 > DAEMON_WAIT_S * 1000000000ULL) {
			snprintf(why, len, "upvmd (%s) to serve within %d s; "
			    "see its log above", upvmd, DAEMON_WAIT_S);
			procs_daemon_stop();
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
	}
	return 0;
}

const char *
procs_daemon_socket(void)
{
	return pd.pd_pid > 0 ? pd.pd_sock : NULL;
}

/*
 * procs_daemon_stop: SIGTERM to upvmd, SIGKILL if it has not gone within
 * DAEMON_STOP_S, and its directory removed.  Safe to call again.
 * => 0, or -EBUSY if upvmd had to be killed (its log is printed).
 */
int
procs_daemon_stop(void)
{
	char tail[512];
	uint64_t t0;
	int error = 0;

	if (pd.pd_owner != getpid())
		return 0;
	if (pd.pd_pid > 0) {
		kill(pd.pd_pid, SIGTERM);
		for (t0 = mono_ns(); waitpid(pd.pd_pid, NULL, WNOHANG) == 0; ) {
			if (mono_ns() - t0 > DAEMON_STOP_S * 1000000000ULL) {
				log_tail(tail, sizeof(tail));
				fprintf(stderr, "upvm-bench: upvmd did not stop "
				    "on SIGTERM within %d s (its log: %s); "
				    "killed it\n", DAEMON_STOP_S, tail);
				kill(pd.pd_pid, SIGKILL);
				waitpid(pd.pd_pid, NULL, 0);
				error = -EBUSY;
				break;
			}
			nanosleep(&(struct timespec){ 0, 10000000L }, NULL);
		}
		pd.pd_pid = 0;
	}
	if (pd.pd_dir[0] != '\0') {
		unlink(pd.pd_sock);
		unlink(pd.pd_log);
		rmdir(pd.pd_dir);
		pd.pd_dir[0] = '\0';
	}
	return error;
}

/*
 * procs_emergency: in a signal handler: the run's children and upvmd
 * killed, upvmd's directory left (its socket is gone with it).
 */
void
procs_emergency(void)
{
	if (pd.pd_owner != getpid())
		return;
	for (unsigned i = 0; kids != NULL && i < nkids; i++)
		if (kids[i].ch_pid > 0)
			kill(kids[i].ch_pid, SIGKILL);
	if (pd.pd_pid > 0)
		kill(pd.pd_pid, SIGKILL);
}
