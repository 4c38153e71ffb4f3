/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dproto.c: the upvmd messages: sizes, the decoder, sending.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "dproto.h"

static const struct {
	size_t		 size;
	const char	*name;
} dm_types[DM_NTYPES] = {
	[DM_HELLO] = { sizeof(struct dm_hello), "hello" },
	[DM_WELCOME] = { sizeof(struct dm_welcome), "welcome" },
	[DM_REPORT] = { sizeof(struct dm_report), "report" },
	[DM_GRANT] = { sizeof(struct dm_grant), "grant" },
	[DM_BYE] = { sizeof(struct dm_hdr), "bye" },
	[DM_ERROR] = { sizeof(struct dm_error), "error" },
	[DM_CTL_STAT] = { sizeof(struct dm_ctl_stat), "stat" },
	[DM_STAT_PROC] = { sizeof(struct dm_stat_proc), "stat-proc" },
	[DM_STAT_TOTAL] = { sizeof(struct dm_stat_total), "stat-total" },
	[DM_CTL_BUDGET] = { sizeof(struct dm_ctl_budget), "budget" },
	[DM_CTL_LIMIT] = { sizeof(struct dm_ctl_limit), "limit" },
	[DM_OK] = { sizeof(struct dm_hdr), "ok" },
};

_Static_assert(sizeof(struct dm_stat_proc) <= DPROTO_MAX_MSG &&
    sizeof(struct dm_stat_total) <= DPROTO_MAX_MSG &&
    sizeof(struct dm_error) <= DPROTO_MAX_MSG &&
    sizeof(struct dm_welcome) <= DPROTO_MAX_MSG, "DPROTO_MAX_MSG too small");

size_t
dproto_size(unsigned type)
{
	return type > 0 && type < DM_NTYPES ? dm_types[type].size : 0;
}

const char *
dproto_name(unsigned type)
{
	return type > 0 && type < DM_NTYPES ? dm_types[type].name : "unknown";
}

void
dproto_init(void *msg, enum dproto_type type)
{
	struct dm_hdr *h = msg;
	size_t size = dproto_size(type);

	memset(msg, 0, size);
	h->mh_magic = DPROTO_MAGIC;
	h->mh_version = DPROTO_VERSION;
	h->mh_type = (uint16_t)type;
	h->mh_len = (uint32_t)size;
}

static int
bad(const char **whyp, const char *why)
{
	if (whyp != NULL)
		*whyp = why;
	return -EPROTO;
}

/* a string field: NUL-terminated inside its array */
static bool
str_ok(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

int
dproto_check(const void *buf, size_t n, const char **why)
{
	struct dm_hdr h;
	union {
		struct dm_hello		hello;
		struct dm_welcome	welcome;
		struct dm_grant		grant;
		struct dm_error		error;
		struct dm_ctl_stat	stat;
		struct dm_stat_proc	proc;
		struct dm_stat_total	total;
		struct dm_report	report;
		struct dm_ctl_budget	budget;
		struct dm_ctl_limit	limit;
	} m;

	if (buf == NULL || n < sizeof(h))
		return bad(why, "shorter than a header");
	memcpy(&h, buf, sizeof(h));
	if (h.mh_magic != DPROTO_MAGIC)
		return bad(why, "not an upvmd message (bad magic)");
	if (h.mh_version != DPROTO_VERSION)
		return bad(why, "another protocol version");
	if (dproto_size(h.mh_type) == 0)
		return bad(why, "unknown message type");
	if (h.mh_len != n || n != dproto_size(h.mh_type))
		return bad(why, "wrong length for its type");
	memcpy(&m, buf, n);	/* aligned, and n <= sizeof(m) */
	switch (h.mh_type) {
	case DM_HELLO:
		if (m.hello.pid <= 0)
			return bad(why, "hello: pid must be positive");
		if (!str_ok(m.hello.comm, sizeof(m.hello.comm)))
			return bad(why, "hello: command name not terminated");
		break;
	case DM_WELCOME:
		if (m.welcome.grant_pages == 0)
			return bad(why, "welcome: a grant of 0 pages");
		if (!str_ok(m.welcome.swap, sizeof(m.welcome.swap)) ||
		    !str_ok(m.welcome.numa, sizeof(m.welcome.numa)) ||
		    !str_ok(m.welcome.node_budget,
		    sizeof(m.welcome.node_budget)))
			return bad(why, "welcome: a setting not terminated");
		break;
	case DM_GRANT:
		if (m.grant.grant_pages == 0)
			return bad(why, "grant: a grant of 0 pages");
		break;
	case DM_ERROR:
		if (!str_ok(m.error.text, sizeof(m.error.text)))
			return bad(why, "error: text not terminated");
		break;
	case DM_CTL_STAT:
		if (m.stat.pid < 0)
			return bad(why, "stat: negative pid");
		break;
	case DM_STAT_PROC:
		if (!str_ok(m.proc.comm, sizeof(m.proc.comm)))
			return bad(why, "stat-proc: command name not "
			    "terminated");
		break;
	case DM_CTL_BUDGET:
		if (m.budget.bytes < DPROTO_MIN_BUDGET)
			return bad(why, "budget: below the 4 MiB minimum");
		break;
	case DM_CTL_LIMIT:
		if (m.limit.pid <= 0)
			return bad(why, "limit: pid must be positive");
		if (m.limit.share > DPROTO_MAX_SHARE)
			return bad(why, "limit: share above 1000");
		break;
	default:
		break;
	}
	return h.mh_type;
}

int
dproto_send(int fd, const void *msg)
{
	const struct dm_hdr *h = msg;
	ssize_t n;

	do
		n = send(fd, msg, h->mh_len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == h->mh_len ? 0 : -EMSGSIZE;
}
