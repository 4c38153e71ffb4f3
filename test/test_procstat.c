/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_procstat: fields of /proc stat files, for this process, one of its
 * threads, a command name that holds ") (", and processes that are gone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procstat.h"
#include "sys.h"

/* field n of a stat file, read the plain way: the line split after the
   last ')' */
static long
plain_field(const char *path, int n)
{
	char buf[1024], *p;
	FILE *f = fopen(path, "r");
	size_t got;

	cr_assert_not_null(f, "%s", path);
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	p = strrchr(buf, ')') + 2;
	for (int field = 3; field < n; field++)
		p = strchr(p, ' ') + 1;
	return strtol(p, NULL, 10);
}

Test(procstat, this_process_by_pid_and_by_self)
{
	char buf[1024], path[64];
	const char *f3, *f;

	cr_assert_eq(proc_stat_read(0, 0, buf, sizeof(buf), &f3), 0);
	cr_assert_eq(*f3, 'R', "state %c", *f3);
	cr_assert_not_null(f = proc_stat_field(f3, 4));
	cr_assert_eq(strtol(f, NULL, 10), (long)getppid());
	cr_assert_eq(proc_stat_read(getpid(), 0, buf, sizeof(buf), &f3), 0);
	cr_assert_not_null(f = proc_stat_field(f3, 22));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)getpid());
	cr_assert_eq(strtol(f, NULL, 10), plain_field(path, 22));
	cr_assert_null(proc_stat_field(f3, 200), "past the line");
}

static void *
sleeper(void *arg)
{
	(void)prctl(PR_SET_NAME, "x) (y z) 3");
	*(pid_t *)arg = sys_gettid();
	pause();
	return NULL;
}

Test(procstat, a_thread_whose_name_holds_parentheses_and_spaces)
{
	volatile pid_t tid = 0;
	char buf[1024], path[96];
	const char *f3, *f;
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, sleeper, (void *)&tid), 0);
	while (tid == 0)
		sched_yield();
	/* until it sleeps in pause() (its CPU stays as it is then) */
	for (int i = 0; i < 500; i++) {
		cr_assert_eq(proc_stat_read(0, tid, buf, sizeof(buf), &f3), 0);
		if (*f3 == 'S')
			break;
		usleep(10000);
	}
	for (int pid = 0; pid <= 1; pid++) {
		cr_assert_eq(proc_stat_read(pid ? getpid() : 0, tid, buf,
		    sizeof(buf), &f3), 0);
		cr_assert_eq(*f3, 'S', "state %c", *f3);
		cr_assert_not_null(f = proc_stat_field(f3, 39));
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat",
		    (int)tid);
		cr_assert_eq(strtol(f, NULL, 10), plain_field(path, 39));
	}
}

Test(procstat, a_process_that_is_gone)
{
	char buf[1024];
	const char *f3;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(proc_stat_read(pid, 0, buf, sizeof(buf), &f3), -ENOENT);
	cr_assert_eq(proc_stat_read(0, pid, buf, sizeof(buf), &f3), -ENOENT);
	cr_assert_lt(proc_open(pid, 0, "maps"), 0);
}

Test(procstat, a_buffer_too_small_for_the_line_is_not_a_stat_line)
{
	char buf[8];
	const char *f3;

	/* "PID (comm" is cut before the ')' */
	cr_assert_eq(proc_stat_read(0, 0, buf, sizeof(buf), &f3), -EINVAL);
}
