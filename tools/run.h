/* SPDX-License-Identifier: BSD-2-Clause */
/* run.h: `upvm run` (run.c) */
#ifndef UPVM_TOOLS_RUN_H
#define UPVM_TOOLS_RUN_H

/* run_main: `upvm run [options] -- PROGRAM [ARGS...]`; argv[0] is "run" */
int run_main(int argc, char **argv);

#endif
