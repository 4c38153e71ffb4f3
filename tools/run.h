/* SPDX-License-Identifier: BSD-2-Clause */
/* run.h: `upvm run` (run.c) */
#ifndef UPVM_TOOLS_RUN_H
#define UPVM_TOOLS_RUN_H

/* run_main: `upvm run [options] -- PROGRAM [ARGS...]`; argv[0] is "run" */
int run_main(int argc, char **argv);

/* numa_main: `upvm numa [--size MIB]` (numa.c) */
int numa_main(int argc, char **argv);

/* run_die: print "<run_prog>: " and the message on stderr, exit with
   status */
extern const char *run_prog;
void run_die(int status, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* ctl.c: upvm stat, upvm top, upvm ctl (talking to upvmd) */
int stat_main(int argc, char **argv);
int top_main(int argc, char **argv);
int ctl_main(int argc, char **argv);

#endif
