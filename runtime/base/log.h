/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.h: one-line diagnostics on stderr.
 *
 * upvm_log() formats into a stack buffer and issues one write(2): no malloc,
 * no stdio, so it is safe inside interposed calls and on runtime threads.
 * Lines look like "upvm: error: upvm_map: size 0 is invalid; ...".
 */
#ifndef UPVM_LOG_H
#define UPVM_LOG_H

#include <stdarg.h>

enum upvm_log_level {
	LOG_NONE = 0,
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

void upvm_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void upvm_log_set_level(int level);
int upvm_log_get_level(void);
/* "error", "warn", "info", "debug", "none" -> level; -EINVAL if unknown */
int upvm_log_parse_level(const char *name);
/* the file descriptor lines go to (default 2); tests capture it */
void upvm_log_set_fd(int fd);

#endif /* UPVM_LOG_H */
