/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procstat.h: fields of /proc/PID/stat and /proc/PID/task/TID/stat.
 *
 * Reads with raw system calls into the caller's buffer: nothing here
 * allocates (a fault thread must never touch managed memory, which
 * malloc's is under `upvm run`).
 */
#ifndef UPVM_PROCSTAT_H
#define UPVM_PROCSTAT_H

#include <stddef.h>
#include <sys/types.h>

/*
 * proc_open: open /proc/PID/WHAT, or /proc/PID/task/TID/WHAT with a
 * tid (pid 0: /proc/self), read-only, close-on-exec.
 * => the descriptor, or -errno
 */
int proc_open(pid_t pid, pid_t tid, const char *what);

/*
 * proc_stat_read: the stat file proc_open names, into buf (len bytes),
 * past the command name (field 2, which may hold spaces and
 * parentheses).
 * => 0 with *field3 at field 3 (the state) in buf; -ENOENT when there is
 *    no such process or thread; -EINVAL for a line that is not a stat
 *    line; another -errno of the open or read.
 */
int proc_stat_read(pid_t pid, pid_t tid, char *buf, size_t len,
    const char **field3);

/*
 * proc_stat_field: field n (>= 3, counted as proc(5) does) of the text
 * proc_stat_read gave.  => its first character, or NULL past the line.
 */
const char *proc_stat_field(const char *field3, int n);

#endif /* UPVM_PROCSTAT_H */
