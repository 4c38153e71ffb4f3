/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlink.c: a process's link to upvmd (dlink.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dlink.h"
#include "config.h"
#include "dproto.h"
#include "lock.h"
#include "log.h"
#include "pdaemon.h"
#include "stats.h"
#include "swap.h"
#include "vm.h"
#include "vmspace.h"

#define DLINK_RETRY_MS	1000	/* upvmd gone: try to attach this often */
#define DLINK_WAIT_MS	1000	/* for the answer to HELLO */

/*
 * dl_hello: connect, HELLO, and the answer.  => the connected fd with
 * *grant set, or -errno with `why` saying what went wrong.
 */
static int
dl_hello(const char *path, uint64_t limit, long resident,
    struct dm_welcome *wel, char *why, size_t whylen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	union {
		struct dm_hdr		h;
		struct dm_welcome	w;
		struct dm_error		e;
		char			buf[DPROTO_MAX_MSG];
	} in;
	struct dm_hello hello;
	struct pollfd pfd;
	ssize_t n;
	int fd, error, type;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, whylen, "the socket path is longer than %zu "
		    "bytes", sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		error = -errno;
		snprintf(why, whylen, "socket: %s", strerror(-error));
		return error;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		error = -errno;
		snprintf(why, whylen, "%s", strerror(-error));
		goto fail;
	}
	dproto_init(&hello, DM_HELLO);
	hello.pid = getpid();
	hello.page_size = PAGE_SIZE;
	hello.limit_pages = limit;
	hello.resident = (uint64_t)(resident > 0 ? resident : 0);
	if (prctl(PR_GET_NAME, hello.comm) != 0)
		strcpy(hello.comm, "?");
	hello.comm[DPROTO_COMM - 1] = '\0';
	if ((error = dproto_send(fd, &hello)) != 0) {
		snprintf(why, whylen, "sending hello: %s", strerror(-error));
		goto fail;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if ((n = poll(&pfd, 1, DLINK_WAIT_MS)) <= 0) {
		error = n == 0 ? -ETIMEDOUT : -errno;
		snprintf(why, whylen, "no answer to hello: %s",
		    strerror(-error));
		goto fail;
	}
	n = recv(fd, &in, sizeof(in), 0);
	if (n <= 0) {
		error = n == 0 ? -ECONNRESET : -errno;
		snprintf(why, whylen, "no answer to hello: %s",
		    strerror(-error));
		goto fail;
	}
	type = dproto_check(&in, (size_t)n, NULL);
	if (type == DM_ERROR) {
		error = in.e.error > 0 ? -in.e.error : -EPROTO;
		snprintf(why, whylen, "refused: %s", in.e.text);
		goto fail;
	}
	if (type != DM_WELCOME) {
		error = -EPROTO;
		snprintf(why, whylen, "a broken answer to hello");
		goto fail;
	}
	in.w.grant_pages = MIN(in.w.grant_pages, (uint64_t)LONG_MAX / 2);
	*wel = in.w;
	return fd;
fail:
	close(fd);
	return error;
}

int
dlink_attach(struct dlink *dl, const char *path, struct upvm_config *cfg)
{
	struct dm_welcome wel;
	uint64_t limit = atop(cfg->budget);
	char why[160];
	int fd, error;

	memset(dl, 0, sizeof(*dl));
	dl->dl_fd = dl->dl_wake = -1;
	fd = dl_hello(path, limit, 0, &wel, why, sizeof(why));
	if (fd < 0) {
		upvm_log(LOG_ERR, "upvm: cannot attach to upvmd at %s: %s; "
		    "start it (upvmd, or systemctl start upvmd.socket) or "
		    "unset UPVM_DAEMON", path, why);
		return fd;
	}
	/* upvmd's paging settings win over the process's own */
	cfg->budget = ptoa(wel.grant_pages);
	if (wel.swap[0] != '\0')
		strcpy(cfg->swap_path, wel.swap);
	if (wel.swap_max != 0)
		cfg->swap_max = wel.swap_max;
	if (wel.numa[0] != '\0')
		strcpy(cfg->numa, wel.numa);
	if (wel.node_budget[0] != '\0')
		strcpy(cfg->node_budget, wel.node_budget);
	if ((error = config_check(cfg)) != 0) {
		close(fd);
		upvm_log(LOG_ERR, "upvm: upvmd at %s sent settings this "
		    "process cannot use (the line above says which)", path);
		return error;
	}
	if ((dl->dl_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		error = -errno;
		close(fd);
		upvm_log(LOG_ERR, "upvm: eventfd: %s", strerror(-error));
		return error;
	}
	strcpy(dl->dl_path, path);
	dl->dl_limit = limit;
	dl->dl_most = MAX(wel.grant_pages, limit != 0 ? MIN(limit,
	    wel.budget_pages) : wel.budget_pages);
	dl->dl_fd = fd;
	dl->dl_pid = getpid();
	upvm_log(LOG_INFO, "upvm: attached to upvmd at %s: budget %llu "
	    "pages", path, (unsigned long long)wel.grant_pages);
	return 0;
}

/* dl_gone: the connection broke; keep the budget, try again later */
static void
dl_gone(struct vmspace *vs, const char *why)
{
	struct dlink *dl = &vs->vs_dlink;

	if (dl->dl_fd >= 0)
		close(dl->dl_fd);
	dl->dl_fd = -1;
	dl->dl_retry_ns = stats_now_ns() + (uint64_t)DLINK_RETRY_MS * 1000000;
	if (!dl->dl_said_gone)
		upvm_log(LOG_WARN, "upvm: upvmd at %s went away (%s); keeping "
		    "the budget of %ld MiB and trying to attach again every "
		    "second", dl->dl_path, why,
		    atomic_load(&vs->vs_budget_now) >> (20 - PAGE_SHIFT));
	dl->dl_said_gone = true;
}

/* dl_reattach: a new connection (upvmd came back, or a fork child) */
static void
dl_reattach(struct vmspace *vs, bool quiet)
{
	struct dlink *dl = &vs->vs_dlink;
	struct dm_welcome wel;
	char why[160];
	long grant;
	int fd;

	fd = dl_hello(dl->dl_path, dl->dl_limit, atomic_load(
	    &vs->vs_resident), &wel, why, sizeof(why));
	if (fd < 0) {
		if (!quiet)
			dl_gone(vs, why);
		dl->dl_retry_ns = stats_now_ns() + (uint64_t)DLINK_RETRY_MS *
		    1000000;
		return;
	}
	dl->dl_fd = fd;
	dl->dl_pid = getpid();
	grant = (long)wel.grant_pages;
	if (dl->dl_said_gone)
		upvm_log(LOG_WARN, "upvm: attached to upvmd at %s again: "
		    "budget %ld MiB", dl->dl_path, grant >> (20 - PAGE_SHIFT));
	dl->dl_said_gone = false;
	vmspace_set_budget(vs, grant);
}

/* the fault latency percentile p over what came since the last report */
static uint64_t
dl_latency(const uint64_t *now, const uint64_t *then, double p)
{
	uint64_t d[UPVM_LATENCY_BUCKETS];

	for (int i = 0; i < UPVM_LATENCY_BUCKETS; i++)
		d[i] = now[i] - then[i];
	return upvm_stats_percentile(d, UPVM_LATENCY_BUCKETS, p);
}

static int
dl_report(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;
	struct vm_stats *st = &vs->vs_stats;
	uint64_t hist[UPVM_LATENCY_BUCKETS];
	struct dm_report r;

	dproto_init(&r, DM_REPORT);
	r.resident = (uint64_t)MAX(atomic_load(&vs->vs_resident), 0);
	r.budget = (uint64_t)atomic_load(&vs->vs_budget_now);
	if (vs->vs_pd != NULL) {
		r.peak = (uint64_t)atomic_load(&vs->vs_pd->pdd_peak);
		r.cpu_ns = pd_cpu_ns(vs->vs_pd);
	}
	if (vs->vs_swap != NULL)
		r.swapped = swap_used(vs->vs_swap);
	r.faults = atomic_load(&st->st_faults);
	r.pageins = atomic_load(&st->st_pageins);
	r.pageouts = atomic_load(&st->st_pageouts);
	r.reactivations = atomic_load(&st->st_reactivations);
	r.io_errors = atomic_load(&st->st_io_errors);
	r.poisoned = atomic_load(&st->st_poisoned);
	r.cpu_ns += atomic_load(&vs->vs_fault_cpu_done) +
	    atomic_load(&vs->vs_pd_cpu_done) + fault_cpu_ns(vs);
	for (int i = 0; i < UPVM_LATENCY_BUCKETS; i++)
		hist[i] = atomic_load(&st->st_latency_hist[i]);
	r.lat_p50_us = dl_latency(hist, dl->dl_hist, 50);
	r.lat_p99_us = dl_latency(hist, dl->dl_hist, 99);
	memcpy(dl->dl_hist, hist, sizeof(hist));
	return dproto_send(dl->dl_fd, &r);
}

/* dl_receive: one message from upvmd.  => false: the link broke */
static bool
dl_receive(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;
	union {
		struct dm_hdr	h;
		struct dm_grant	g;
		struct dm_error	e;
		char		buf[DPROTO_MAX_MSG];
	} in;
	const char *why;
	ssize_t n;

	n = recv(dl->dl_fd, &in, sizeof(in), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		dl_gone(vs, n == 0 ? "it closed the connection" :
		    strerror(errno));
		return false;
	}
	switch (dproto_check(&in, (size_t)n, &why)) {
	case DM_GRANT:
		vmspace_set_budget(vs, (long)MIN(in.g.grant_pages,
		    (uint64_t)LONG_MAX / 2));
		break;
	case DM_ERROR:
		upvm_log(LOG_WARN, "upvm: upvmd says: %s", in.e.text);
		break;
	case -EPROTO:
		upvm_log(LOG_WARN, "upvm: a broken message from upvmd (%s); "
		    "ignored", why);
		break;
	default:
		break;
	}
	return true;
}

static void *
dlink_main(void *arg)
{
	struct vmspace *vs = arg;
	struct dlink *dl = &vs->vs_dlink;
	uint64_t next = stats_now_ns(), now, until;
	struct pollfd pfd[2];
	uint64_t v;

	vm_tl_inside = 1;
	prctl(PR_SET_NAME, "upvm-dlink");
	for (;;) {
		now = stats_now_ns();
		if (dl->dl_fd < 0 && now >= dl->dl_retry_ns)
			dl_reattach(vs, dl->dl_said_gone);
		if (dl->dl_fd >= 0 && now >= next) {
			int error = dl_report(vs);

			if (error != 0)
				dl_gone(vs, strerror(-error));
			next = now + (uint64_t)DPROTO_REPORT_MS * 1000000;
		}
		until = dl->dl_fd >= 0 ? next : dl->dl_retry_ns;
		now = stats_now_ns();
		pfd[0] = (struct pollfd){ .fd = dl->dl_wake, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = dl->dl_fd, .events = POLLIN };
		if (poll(pfd, dl->dl_fd >= 0 ? 2 : 1, until > now ?
		    (int)((until - now) / 1000000) + 1 : 0) < 0 &&
		    errno != EINTR)
			break;
		if (pfd[0].revents != 0 && read(dl->dl_wake, &v,
		    sizeof(v)) == sizeof(v))
			break;
		if (dl->dl_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP |
		    POLLERR)))
			(void)dl_receive(vs);
	}
	return NULL;
}

void
dlink_start(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;
	sigset_t all, old;
	int error;

	if (dl->dl_path[0] == '\0' || dl->dl_running)
		return;
	if (dl->dl_pid != getpid()) {
		/* a fork child: the connection is its parent's */
		if (dl->dl_fd >= 0)
			close(dl->dl_fd);
		dl->dl_fd = -1;
		/* and so is the eventfd */
		if (dl->dl_wake >= 0)
			close(dl->dl_wake);
		dl->dl_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dl->dl_said_gone = false;
		memset(dl->dl_hist, 0, sizeof(dl->dl_hist));
		dl_reattach(vs, false);
	}
	if (dl->dl_wake < 0) {
		upvm_log(LOG_ERR, "upvm: no eventfd for the link to upvmd in "
		    "this fork child; its budget stays at %ld MiB",
		    atomic_load(&vs->vs_budget_now) >> (20 - PAGE_SHIFT));
		return;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = pthread_create(&dl->dl_thread, NULL, dlink_main, vs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		upvm_log(LOG_ERR, "upvm: cannot start the thread that talks "
		    "to upvmd: %s; the budget stays at %ld MiB",
		    strerror(error),
		    atomic_load(&vs->vs_budget_now) >> (20 - PAGE_SHIFT));
		return;
	}
	dl->dl_running = true;
}

void
dlink_stop(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;
	uint64_t one = 1;

	if (!dl->dl_running)
		return;
	(void)!write(dl->dl_wake, &one, sizeof(one));
	pthread_join(dl->dl_thread, NULL);
	dl->dl_running = false;
}

void
dlink_bye(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;
	struct dm_hdr bye;

	if (dl->dl_path[0] == '\0')
		return;
	dlink_stop(vs);		/* the connection is the thread's */
	if (dl->dl_fd < 0 || dl->dl_pid != getpid())
		return;
	dproto_init(&bye, DM_BYE);
	(void)dproto_send(dl->dl_fd, &bye);
}

void
dlink_detach(struct vmspace *vs)
{
	struct dlink *dl = &vs->vs_dlink;

	if (dl->dl_path[0] == '\0')
		return;
	dlink_bye(vs);
	if (dl->dl_fd >= 0)
		close(dl->dl_fd);
	if (dl->dl_wake >= 0)
		close(dl->dl_wake);
	dl->dl_fd = dl->dl_wake = -1;
	dl->dl_path[0] = '\0';
}
