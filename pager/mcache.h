/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mcache.h: a memcached client for the remote pager: one TCP connection to
 * one server, speaking the text protocol, pipelined.  Inside pager/ only.
 *
 * Why not libmemcached: measured on loopback (memcached 1.6.18, Debian 12's
 * libmemcached 1.1.4), a confirmed set costs one round trip (64 sets of a
 * page: 6.1-7.7 ms), and its buffered mode, the only pipelined one, does
 * not say which sets were stored (and asserted on a closed socket).  A
 * pager must know that every page it drops is stored, so mc_set_many
 * writes n "set" commands in one writev and then reads n replies: one
 * round trip for a cluster, each value confirmed.  mc_get_many is one
 * "get k1 ... kn".  Values are described by struct mc_val, so one value
 * may hold several pages and a get may keep only part of one.  Placement
 * and replication over servers are the remote pager's (remote.c), not
 * the connection's.
 *
 * Every call has a deadline: a server that does not answer in time is a
 * failed connection (the caller closes it and decides).
 *
 * Locks: none; a connection belongs to one thread.
 */
#ifndef UPVM_MCACHE_H
#define UPVM_MCACHE_H

#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX	64	/* bytes of a key, with its NUL */

/*
 * mc_val: a value's bytes in memory.  A set stores mv_buf[0, mv_len)
 * (mv_skip is 0).  A get wants bytes [mv_skip, mv_skip + mv_len) of the
 * stored value in mv_buf and drops the rest; a value shorter than
 * mv_skip + mv_len is not ours (-EBADMSG).
 */
struct mc_val {
	void		*mv_buf;
	size_t		 mv_skip;
	size_t		 mv_len;
};

struct mc_conn {
	int		 mc_fd;		/* -1: closed */
	char		 mc_host[64];
	char		 mc_port[8];
	char		*mc_rbuf;	/* reply buffer (kmem) */
	size_t		 mc_rlen;	/* bytes in mc_rbuf */
	size_t		 mc_rpos;	/* first unread byte */
};

/* mc_init: a closed connection to host:port (no I/O) */
void mc_init(struct mc_conn *, const char *host, const char *port);

/* mc_open: connect if closed.  => 0, or -errno (-ETIMEDOUT) */
int mc_open(struct mc_conn *, int timeout_ms);
void mc_close(struct mc_conn *);
/* mc_forget: after fork, the child lets go of the parent's socket */
void mc_forget(struct mc_conn *);
void mc_fini(struct mc_conn *);

/*
 * mc_set_many: store vals[i] under keys[i], n of them.
 * => 0 with res[i] 0 (stored) or -ENOSPC (the server refused: out of
 *    memory, too large); or -errno when the connection failed (nothing
 *    known of any item: treat all as not stored; the connection is closed).
 */
int mc_set_many(struct mc_conn *, const char *const *keys,
    const struct mc_val *vals, int n, int *res, int timeout_ms);

/*
 * mc_get_many: fetch the part of keys[i]'s value that outs[i] wants.
 * The same key may be asked for twice (two parts of one value).
 * => 0 with res[i] 0 (read), -ENOENT (not there) or -EBADMSG (too short:
 *    not ours); or -errno when the connection failed.
 */
int mc_get_many(struct mc_conn *, const char *const *keys,
    const struct mc_val *outs, int n, int *res, int timeout_ms);

/*
 * mc_set_send / mc_set_recv, mc_get_send / mc_get_recv: the two halves of
 * mc_set_many and mc_get_many, so that one thread keeps several servers
 * busy at once: send to each, then read each one's replies (in the order
 * sent).  A set_send's replies must be read before more than about 64
 * sets wait on one connection (the server's replies fill no buffer
 * before that).
 */
int mc_set_send(struct mc_conn *, const char *const *keys,
    const struct mc_val *vals, int n, int timeout_ms);
int mc_set_recv(struct mc_conn *, int n, int *res, int timeout_ms);
int mc_get_send(struct mc_conn *, const char *const *keys, int n,
    int timeout_ms);
int mc_get_recv(struct mc_conn *, const char *const *keys,
    const struct mc_val *outs, int n, int *res, int timeout_ms);

/* mc_delete_many: delete keys[0..n) without replies.  => 0 or -errno */
int mc_delete_many(struct mc_conn *, const char *const *keys, int n,
    int timeout_ms);

/* mc_stat: the value of the numeric "stats" field name.  => 0 or -errno */
int mc_stat(struct mc_conn *, const char *name, uint64_t *val,
    int timeout_ms);

#endif /* UPVM_MCACHE_H */
