/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.c: upvm_log() and the assertion handler.  Nothing here allocates.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sys.h"
#include "vm.h"

static atomic_int log_level = LOG_WARN;
_Atomic bool vm_failed;
static atomic_int log_fd = 2;

static const char *const level_names[] = {
	[LOG_NONE] = "none", [LOG_ERR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
upvm_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int
upvm_log_get_level(void)
{
	return atomic_load(&log_level);
}

void
upvm_log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
}

int
upvm_log_parse_level(const char *name)
{
	for (size_t i = 0; i < nitems(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void
upvm_log(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n, m;

	if (level > atomic_load_explicit(&log_level, memory_order_relaxed) ||
	    level <= LOG_NONE)
		return;
	n = snprintf(buf, sizeof(buf), "upvm: %s: ", level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	m = MIN(m, (int)sizeof(buf) - n - 2);
	/* one line, whatever the arguments held */
	for (int i = n; i < n + m; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	n += m;
	buf[n++] = '\n';
	(void)!sys_write(atomic_load(&log_fd), buf, (size_t)n);
}

void
vm_assert_fail(const char *expr, const char *file, int line)
{
	atomic_store(&vm_failed, true);
	/* whatever the log level: this is the last thing upvm says */
	atomic_store(&log_level, LOG_ERR);
	upvm_log(LOG_ERR, "assertion \"%s\" failed at %s:%d", expr, file,
	    line);
	abort();
}
