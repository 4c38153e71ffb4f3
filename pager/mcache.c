/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mcache.c: a pipelined memcached text-protocol client (see mcache.h).
 *
 * A batch is written whole (writev) and then its replies are read in
 * order: "STORED" / "NOT_STORED" / "SERVER_ERROR ..." per set, and per
 * get "VALUE <key> <flags> <bytes>" + data + "END", or "END" alone.  A
 * reply that is none of these means the stream is out of step: the
 * connection is closed, nothing of the batch is trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kmem.h"
#include "mcache.h"
#include "stats.h"
#include "vm.h"

#define MC_RBUF		(64 * 1024)
#define MC_IOV_BATCH	(3 * 64)	/* iovecs per writev (3 per set) */
#define MC_GET_KEYS	64		/* keys per multi-key get */

void
mc_init(struct mc_conn *c, const char *host, const char *port)
{
	memset(c, 0, sizeof(*c));
	c->mc_fd = -1;
	(void)snprintf(c->mc_host, sizeof(c->mc_host), "%s", host);
	(void)snprintf(c->mc_port, sizeof(c->mc_port), "%s", port);
}

void
mc_close(struct mc_conn *c)
{
	if (c->mc_fd >= 0)
		close(c->mc_fd);
	c->mc_fd = -1;
	c->mc_rlen = c->mc_rpos = 0;
}

void
mc_forget(struct mc_conn *c)
{
	/* the socket is the parent's stream too: close our descriptor
	   only (no shutdown, no "quit"), so its replies stay the parent's */
	mc_close(c);
}

void
mc_fini(struct mc_conn *c)
{
	mc_close(c);
	if (c->mc_rbuf != NULL)
		kmem_free(c->mc_rbuf, MC_RBUF);
	c->mc_rbuf = NULL;
}

/* mc_wait: poll fd for events until the deadline.  => 0 or -ETIMEDOUT */
static int
mc_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - stats_now_ms()) <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)MIN(left, INT_MAX));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int
mc_open(struct mc_conn *c, int timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM }, *ai, *p;
	int64_t deadline = stats_now_ms() + timeout_ms;
	int fd = -1, error, one = 1, soerr;
	socklen_t sl;

	if (c->mc_fd >= 0)
		return 0;
	if (c->mc_rbuf == NULL && (c->mc_rbuf = kmem_alloc(MC_RBUF)) == NULL)
		return -ENOMEM;
	if ((error = getaddrinfo(c->mc_host, c->mc_port, &hints, &ai)) != 0)
		return error == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	error = -ECONNREFUSED;
	for (p = ai; p != NULL; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, p->ai_protocol);
		if (fd < 0) {
			error = -errno;
			continue;
		}
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
			break;
		error = -errno;
		if (errno == EINPROGRESS &&
		    (error = mc_wait(fd, POLLOUT, deadline)) == 0) {
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ==
			    0 && soerr == 0)
				break;
			error = -soerr;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return error;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->mc_fd = fd;
	c->mc_rlen = c->mc_rpos = 0;
	return 0;
}

/*
 * mc_cmd: "<verb> <key><tail>" into out (MC_KEY_MAX + 32 bytes), without
 * printf: a command per page.  => its length
 */
static int
mc_cmd(char *out, const char *verb, const char *key, const char *tail)
{
	size_t v = strlen(verb), k = strnlen(key, MC_KEY_MAX - 1),
	    t = strlen(tail);

	memcpy(out, verb, v);
	memcpy(out + v, key, k);
	memcpy(out + v + k, tail, t);
	return (int)(v + k + t);
}

/* mc_writev_all: send every byte of iov[0..cnt) (modified) */
static int
mc_writev_all(struct mc_conn *c, struct iovec *iov, int cnt, int64_t deadline)
{
	ssize_t n;
	int error;

	while (cnt > 0) {
		/* a server that closed: EPIPE, never SIGPIPE in the program */
		n = sendmsg(c->mc_fd, &(struct msghdr){ .msg_iov = iov,
		    .msg_iovlen = (size_t)MIN(cnt, IOV_MAX) }, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((error = mc_wait(c->mc_fd, POLLOUT, deadline)) != 0)
				return error;
			continue;
		}
		if (n < 0)
			return -errno;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* mc_fill: read more of the reply into mc_rbuf.  => 0 or -errno */
static int
mc_fill(struct mc_conn *c, int64_t deadline)
{
	ssize_t n;
	int error;

	if (c->mc_rpos > 0) {
		memmove(c->mc_rbuf, c->mc_rbuf + c->mc_rpos,
		    c->mc_rlen - c->mc_rpos);
		c->mc_rlen -= c->mc_rpos;
		c->mc_rpos = 0;
	}
	if (c->mc_rlen == MC_RBUF)
		return -EPROTO;		/* a line longer than the buffer */
	for (;;) {
		n = read(c->mc_fd, c->mc_rbuf + c->mc_rlen, MC_RBUF -
		    c->mc_rlen);
		if (n > 0) {
			c->mc_rlen += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((error = mc_wait(c->mc_fd, POLLIN, deadline)) != 0)
			return error;
	}
}

/* mc_line: the next reply line, NUL-terminated in place (no CRLF) */
static int
mc_line(struct mc_conn *c, char **linep, int64_t deadline)
{
	char *s, *e;
	int error;

	for (;;) {
		s = c->mc_rbuf + c->mc_rpos;
		e = memmem(s, c->mc_rlen - c->mc_rpos, "\r\n", 2);
		if (e != NULL) {
			*e = '\0';
			c->mc_rpos = (size_t)(e + 2 - c->mc_rbuf);
			*linep = s;
			return 0;
		}
		if ((error = mc_fill(c, deadline)) != 0)
			return error;
	}
}

/*
 * mc_take: len bytes of data into dst, or dropped if NULL.  What the
 * buffer does not hold yet is read straight into dst (a page is copied
 * once, not twice) or dropped by the kernel (MSG_TRUNC: the rest of a
 * value of which a read wants one page is never copied at all).
 */
static int
mc_take(struct mc_conn *c, char *dst, size_t len, int64_t deadline)
{
	size_t pos = 0, have;
	ssize_t n;
	int error;

	while (pos < len) {
		if (c->mc_rpos == c->mc_rlen && len - pos > 256) {
			n = dst != NULL ? read(c->mc_fd, dst + pos, len - pos) :
			    recv(c->mc_fd, NULL, len - pos, MSG_TRUNC);
			if (n > 0) {
				pos += (size_t)n;
				continue;
			}
			if (n == 0)
				return -ECONNRESET;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if ((error = mc_wait(c->mc_fd, POLLIN, deadline)) != 0)
				return error;
			continue;
		}
		if (c->mc_rpos == c->mc_rlen && (error = mc_fill(c, deadline)))
			return error;
		have = MIN(len - pos, c->mc_rlen - c->mc_rpos);
		if (dst != NULL)
			memcpy(dst + pos, c->mc_rbuf + c->mc_rpos, have);
		c->mc_rpos += have;
		pos += have;
	}
	return 0;
}

/*
 * mc_take_value: a value of `bytes` bytes and its CRLF: the part v
 * wants into it, the rest dropped.  => 0 (*resp 0, or -EBADMSG: too
 * short, all dropped) or the connection's -errno.
 */
static int
mc_take_value(struct mc_conn *c, const struct mc_val *v, size_t bytes,
    int *resp, int64_t deadline)
{
	int error;

	if (bytes < v->mv_skip || bytes - v->mv_skip < v->mv_len) {
		*resp = -EBADMSG;
		return mc_take(c, NULL, bytes + 2, deadline);
	}
	*resp = 0;
	if ((error = mc_take(c, NULL, v->mv_skip, deadline)) != 0 ||
	    (error = mc_take(c, v->mv_buf, v->mv_len, deadline)) != 0)
		return error;
	return mc_take(c, NULL, bytes - v->mv_skip - v->mv_len + 2, deadline);
}

/* mc_set_send: write n set commands (no replies read) */
int
mc_set_send(struct mc_conn *c, const char *const *keys,
    const struct mc_val *vals, int n, int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	char hdr[64][MC_KEY_MAX + 32], tail[32];
	struct iovec iov[MC_IOV_BATCH];
	const struct mc_val *v;
	int error = 0, done, m, k;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	for (done = 0; done < n && error == 0; done += m) {
		m = MIN(n - done, (int)nitems(hdr));
		for (int i = 0; i < m; i++) {
			v = &vals[done + i];
			VM_ASSERT(v->mv_skip == 0);
			(void)snprintf(tail, sizeof(tail), " 0 0 %zu\r\n",
			    v->mv_len);
			k = mc_cmd(hdr[i], "set ", keys[done + i], tail);
			iov[3 * i] = (struct iovec){ hdr[i], (size_t)k };
			iov[3 * i + 1] = (struct iovec){ v->mv_buf,
			    v->mv_len };
			iov[3 * i + 2] = (struct iovec){ "\r\n", 2 };
		}
		error = mc_writev_all(c, iov, 3 * m, deadline);
	}
	if (error != 0)
		mc_close(c);
	return error;
}

/* mc_set_recv: the n replies of mc_set_send */
int
mc_set_recv(struct mc_conn *c, int n, int *res, int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	char *line;
	int error = 0;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	for (int i = 0; i < n && error == 0; i++) {
		if ((error = mc_line(c, &line, deadline)) != 0)
			break;
		if (strcmp(line, "STORED") == 0)
			res[i] = 0;
		else if (strcmp(line, "NOT_STORED") == 0 ||
		    strncmp(line, "SERVER_ERROR", 12) == 0)
			res[i] = -ENOSPC;
		else
			error = -EPROTO;
	}
	if (error != 0)
		mc_close(c);
	return error;
}

int
mc_set_many(struct mc_conn *c, const char *const *keys,
    const struct mc_val *vals, int n, int *res, int timeout_ms)
{
	int error;

	/* in rounds of 64: the replies of a round fit any socket buffer */
	for (int done = 0, m; done < n; done += m) {
		m = MIN(n - done, 64);
		if ((error = mc_set_send(c, keys + done, vals + done, m,
		    timeout_ms)) != 0 ||
		    (error = mc_set_recv(c, m, res + done, timeout_ms)) != 0)
			return error;
	}
	return 0;
}

/*
 * mc_get_send: ask for keys[0..n): one multi-key "get k1 k2 ...\r\n" per
 * MC_GET_KEYS keys (the server parses one command, not one per key, and
 * ends each with one END).  No replies read.
 */
int
mc_get_send(struct mc_conn *c, const char *const *keys, int n, int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	struct iovec iov[2 * MC_GET_KEYS + 2];
	int error = 0, done, m, k;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	for (done = 0; done < n && error == 0; done += m) {
		m = MIN(n - done, MC_GET_KEYS);
		k = 0;
		iov[k++] = (struct iovec){ "get", 3 };
		for (int i = 0; i < m; i++) {
			iov[k++] = (struct iovec){ " ", 1 };
			iov[k++] = (struct iovec){ (void *)keys[done + i],
			    strnlen(keys[done + i], MC_KEY_MAX - 1) };
		}
		iov[k++] = (struct iovec){ "\r\n", 2 };
		error = mc_writev_all(c, iov, k, deadline);
	}
	if (error != 0)
		mc_close(c);
	return error;
}

/*
 * mc_get_chunk: the reply to one multi-key get of keys[0..n): a VALUE
 * block for each key the server has, in the order asked, then END.
 */
static int
mc_get_chunk(struct mc_conn *c, const char *const *keys,
    const struct mc_val *outs, int n, int *res, int64_t deadline)
{
	unsigned long long bytes;
	char *line, *key, *sp;
	int error, i = 0;

	for (int j = 0; j < n; j++)
		res[j] = -ENOENT;
	for (;;) {
		if ((error = mc_line(c, &line, deadline)) != 0)
			return error;
		if (strcmp(line, "END") == 0)
			return 0;
		/* VALUE <key> <flags> <bytes> */
		if (strncmp(line, "VALUE ", 6) != 0 ||
		    (sp = strchr(key = line + 6, ' ')) == NULL)
			return -EPROTO;
		*sp = '\0';
		while (i < n && strcmp(keys[i], key) != 0)
			i++;		/* the keys before it: misses */
		if (i == n || (sp = strrchr(sp + 1, ' ')) == NULL)
			return -EPROTO;
		bytes = strtoull(sp + 1, NULL, 10);
		if (bytes > SIZE_MAX / 2)
			return -EPROTO;
		if ((error = mc_take_value(c, &outs[i], (size_t)bytes,
		    &res[i], deadline)) != 0)
			return error;
		i++;
	}
}

/* mc_get_recv: the replies of mc_get_send(keys, n), into outs[] */
int
mc_get_recv(struct mc_conn *c, const char *const *keys,
    const struct mc_val *outs, int n, int *res, int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	int error = 0;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	for (int done = 0, m; done < n && error == 0; done += m) {
		m = MIN(n - done, MC_GET_KEYS);
		error = mc_get_chunk(c, keys + done, outs + done, m,
		    res + done, deadline);
	}
	if (error != 0)
		mc_close(c);
	return error;
}

int
mc_get_many(struct mc_conn *c, const char *const *keys,
    const struct mc_val *outs, int n, int *res, int timeout_ms)
{
	int error;

	if ((error = mc_get_send(c, keys, n, timeout_ms)) != 0)
		return error;
	return mc_get_recv(c, keys, outs, n, res, timeout_ms);
}

int
mc_delete_many(struct mc_conn *c, const char *const *keys, int n,
    int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	char req[64][MC_KEY_MAX + 32];
	struct iovec iov[64];
	int error = 0, done, m, k;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	for (done = 0; done < n && error == 0; done += m) {
		m = MIN(n - done, (int)nitems(req));
		for (int i = 0; i < m; i++) {
			k = mc_cmd(req[i], "delete ", keys[done + i],
			    " noreply\r\n");
			iov[i] = (struct iovec){ req[i], (size_t)k };
		}
		error = mc_writev_all(c, iov, m, deadline);
	}
	if (error != 0)
		mc_close(c);
	return error;
}

int
mc_stat(struct mc_conn *c, const char *name, uint64_t *val, int timeout_ms)
{
	int64_t deadline = stats_now_ms() + timeout_ms;
	struct iovec iov = { "stats\r\n", 7 };
	size_t nl = strlen(name);
	char *line;
	int error;
	bool found = false;

	if (c->mc_fd < 0)
		return -ENOTCONN;
	if ((error = mc_writev_all(c, &iov, 1, deadline)) != 0)
		goto out;
	for (;;) {
		if ((error = mc_line(c, &line, deadline)) != 0)
			goto out;
		if (strcmp(line, "END") == 0)
			break;
		if (strncmp(line, "STAT ", 5) != 0) {
			error = -EPROTO;
			goto out;
		}
		if (strncmp(line + 5, name, nl) == 0 && line[5 + nl] == ' ') {
			*val = strtoull(line + 6 + nl, NULL, 10);
			found = true;
		}
	}
	return found ? 0 : -ENOENT;
out:
	mc_close(c);
	return error;
}
