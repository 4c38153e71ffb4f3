/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * coredump.h: paged-out pages read back in before a core dump (the why
 * and the limits are in coredump.c).  Only in libupvm.so.
 */
#ifndef UPVM_COREDUMP_H
#define UPVM_COREDUMP_H

/*
 * coredump_install: handle each core-dumping signal whose disposition is
 * still the default.  Call once upvm runs, from the preload's
 * constructor.
 */
void coredump_install(void);

#endif /* UPVM_COREDUMP_H */
