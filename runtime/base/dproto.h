/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dproto.h: the messages between upvmd and the processes and tools that
 * talk to it, over one AF_UNIX SOCK_SEQPACKET connection each (a message
 * is one packet: no framing, a short or long packet is a broken message).
 * Both ends run on one machine: fields are in host byte order, fixed
 * size, strings NUL-terminated inside their arrays.
 *
 * A process under upvm (dlink.c) says HELLO once; upvmd answers WELCOME
 * with its first budget grant (or ERROR), and later GRANT whenever it
 * moves budget; the process sends REPORT about every DPROTO_REPORT_MS and
 * BYE when it leaves.  A tool (upvm stat/top/ctl) sends one CTL_* request
 * and gets STAT_PROC... STAT_TOTAL, OK or ERROR.
 *
 * The daemon trusts nothing in a message: dproto_check() is the decoder
 * that every received packet passes first (fuzzed: test/fuzz), and the
 * peer's identity comes from SO_PEERCRED, never from the message.
 */
#ifndef UPVM_DPROTO_H
#define UPVM_DPROTO_H

#include <stddef.h>
#include <stdint.h>

#define DPROTO_MAGIC	0x44565055u	/* "UPVD" */
#define DPROTO_VERSION	1
#define DPROTO_REPORT_MS 100		/* a process reports this often */
#define DPROTO_COMM	16		/* command name, as /proc/PID/comm */
#define DPROTO_TEXT	120		/* an error's text */
#define DPROTO_DEFAULT_SOCKET "/run/upvm/upvmd.sock"

enum dproto_type {
	DM_HELLO = 1,	/* process -> upvmd: attach me */
	DM_WELCOME,	/* upvmd -> process: attached, here is a budget */
	DM_REPORT,	/* process -> upvmd: counters */
	DM_GRANT,	/* upvmd -> process: the budget is now this */
	DM_BYE,		/* process -> upvmd: detaching */
	DM_ERROR,	/* upvmd -> anyone: refused, and why */
	DM_CTL_STAT,	/* tool -> upvmd: the table (one pid or all) */
	DM_STAT_PROC,	/* upvmd -> tool: one row */
	DM_STAT_TOTAL,	/* upvmd -> tool: the totals, last */
	DM_CTL_BUDGET,	/* tool -> upvmd: a new total budget (root) */
	DM_CTL_LIMIT,	/* tool -> upvmd: one process's limit and share */
	DM_OK,		/* upvmd -> tool: done */
	DM_NTYPES
};

struct dm_hdr {
	uint32_t	mh_magic;
	uint16_t	mh_version;
	uint16_t	mh_type;	/* enum dproto_type */
	uint32_t	mh_len;		/* the whole packet */
	uint32_t	mh_pad;
};

struct dm_hello {
	struct dm_hdr	h;
	int32_t		pid;		/* must be the peer's (SO_PEERCRED) */
	uint32_t	page_size;	/* must be upvmd's */
	uint64_t	limit_pages;	/* the process's own cap (UPVM_BUDGET
					   with a daemon), 0: none */
	uint64_t	resident;	/* pages it holds now (a re-attach, a
					   fork child) */
	char		comm[DPROTO_COMM];
};

struct dm_welcome {
	struct dm_hdr	h;
	uint64_t	grant_pages;	/* >= 1 */
	uint64_t	budget_pages;	/* upvmd's whole budget: the most a
					   grant may become */
	/* upvmd's paging settings, each "" or 0 where it has none (the
	   process's own apply): where swap files go, their cap, placement */
	uint64_t	swap_max;	/* bytes */
	char		swap[256];
	char		numa[192];
	char		node_budget[256];
};

struct dm_report {
	struct dm_hdr	h;
	uint64_t	resident;	/* managed pages resident now */
	uint64_t	peak;		/* most resident at once */
	uint64_t	swapped;	/* swap slots in use */
	uint64_t	budget;		/* the budget in effect, pages */
	uint64_t	faults;		/* counters since start: */
	uint64_t	pageins;
	uint64_t	pageouts;
	uint64_t	reactivations;	/* faults served from memory */
	uint64_t	cpu_ns;		/* upvm's threads */
	uint64_t	lat_p50_us;	/* fault latency since the last report */
	uint64_t	lat_p99_us;
	uint64_t	io_errors;	/* failed swap or file I/Os, since start */
	uint64_t	poisoned;	/* pages that raise SIGBUS (lost) */
};

struct dm_grant {
	struct dm_hdr	h;
	uint64_t	grant_pages;	/* >= 1 */
};

struct dm_error {
	struct dm_hdr	h;
	int32_t		error;		/* an errno */
	uint32_t	pad;
	char		text[DPROTO_TEXT];
};

struct dm_ctl_stat {
	struct dm_hdr	h;
	int32_t		pid;		/* 0: every process the peer may see */
	uint32_t	pad;
};

struct dm_stat_proc {
	struct dm_hdr	h;
	int32_t		pid;
	uint32_t	uid;
	char		comm[DPROTO_COMM];
	uint64_t	resident, peak, swapped, grant, limit;	/* pages */
	uint32_t	share;		/* weight, 1..1000 (100: default) */
	uint32_t	pad;
	uint64_t	faults, pageins, pageouts;	/* totals */
	double		faults_ps, pageins_ps, pageouts_ps; /* last second */
	uint64_t	lat_p50_us, lat_p99_us;
	uint64_t	cpu_ns;
	double		attached_s;
};

struct dm_stat_total {
	struct dm_hdr	h;
	uint64_t	budget;		/* pages */
	uint64_t	granted;	/* sum of grants */
	uint64_t	resident;	/* sum of reported resident */
	uint64_t	peak;		/* most resident at once, summed */
	uint64_t	swapped;
	uint32_t	nprocs;		/* attached (all, not only shown) */
	uint32_t	page_size;
	uint64_t	attaches, crashes;	/* since upvmd started */
	double		faults_ps, pageins_ps, pageouts_ps;
	double		uptime_s;
};

struct dm_ctl_budget {
	struct dm_hdr	h;
	uint64_t	bytes;		/* >= DPROTO_MIN_BUDGET */
};

struct dm_ctl_limit {
	struct dm_hdr	h;
	int32_t		pid;
	uint32_t	share;		/* 0: unchanged, else 1..1000 */
	uint64_t	bytes;		/* UINT64_MAX: unchanged, 0: none */
};

#define DPROTO_MIN_BUDGET	((uint64_t)4 << 20)
#define DPROTO_MAX_SHARE	1000

/* the largest message: a receive buffer of this size sees truncation */
#define DPROTO_MAX_MSG		1024

/*
 * dproto_init: fill in a header for a message of `type` (its size from
 * the type), the rest zeroed.
 */
void dproto_init(void *msg, enum dproto_type type);

/* dproto_size: the size of a message of `type`, 0 for none */
size_t dproto_size(unsigned type);

/*
 * dproto_check: the decoder.  A packet of n bytes is a message when it
 * has the magic, the version, a known type, mh_len == n == that type's
 * size, and NUL-terminated strings; numbers are range-checked where the
 * type says (a grant >= 1, a share <= DPROTO_MAX_SHARE, a pid > 0...).
 * => the type, or -EPROTO (why in `why`, a short phrase, if not NULL).
 */
int dproto_check(const void *buf, size_t n, const char **why);

/* dproto_send: one message, whole, MSG_NOSIGNAL.  => 0 or -errno */
int dproto_send(int fd, const void *msg);

/* dproto_name: a type's name, for logs */
const char *dproto_name(unsigned type);

#endif /* UPVM_DPROTO_H */
