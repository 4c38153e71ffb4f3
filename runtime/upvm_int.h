/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upvm_int.h: entry points of the runtime that are not part of the public
 * API: for the test suites (which link upvm_core) and upvm's own tools.
 */
#ifndef UPVM_INT_H
#define UPVM_INT_H

#include <stdbool.h>

/*
 * upvm_inject_swap_failure: the nth next swap read (write: write) fails
 * with EIO as if the disk had failed (swap_inject_failure()).
 * => -ENXIO without a running upvm with a budget.
 */
int upvm_inject_swap_failure(bool write, int nth);

#endif /* UPVM_INT_H */
