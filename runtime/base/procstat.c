/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procstat.c: fields of /proc stat files (see procstat.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"
#include "sys.h"

int
proc_open(pid_t pid, pid_t tid, const char *what)
{
	char path[64];
	int fd;

	if (pid == 0 && tid != 0)
		(void)snprintf(path, sizeof(path), "/proc/self/task/%d/%s",
		    (int)tid, what);
	else if (pid == 0)
		(void)snprintf(path, sizeof(path), "/proc/self/%s", what);
	else if (tid != 0)
		(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/%s",
		    (int)pid, (int)tid, what);
	else
		(void)snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid,
		    what);
	return (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ? -errno : fd;
}

int
proc_stat_read(pid_t pid, pid_t tid, char *buf, size_t len,
    const char **field3)
{
	ssize_t n;
	char *p;
	int fd;

	if ((fd = proc_open(pid, tid, "stat")) < 0)
		return fd == -ESRCH ? -ENOENT : fd;
	n = sys_read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ENOENT : -EIO;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -EINVAL;
	*field3 = p + 2;
	return 0;
}

const char *
proc_stat_field(const char *field3, int n)
{
	const char *p = field3;

	for (int field = 3; field < n; p++) {
		if (*p == '\0')
			return NULL;
		if (*p == ' ')
			field++;
	}
	return *p != '\0' ? p : NULL;
}
