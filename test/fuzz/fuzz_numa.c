/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_numa.c: libFuzzer target for the NUMA parsers (numa/policy.c):
 * numa_policy_parse, numa_nodelist_parse and numa_budgets_parse on the
 * input as one string.  Besides crashes and undefined behaviour it checks
 * a property: a policy parsed, printed with numa_policy_name and parsed
 * again is the same policy (the name is what --stats and the logs show,
 * and what a user copies back).  test/fuzz/run.sh builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct numa_policy pol, again;
	uint64_t bytes[NUMA_NODES_MAX];
	nodemask_t64 mask;
	char err[128], name[256], *s;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (numa_policy_parse(s, &pol, err, sizeof(err)) == 0) {
		numa_policy_name(&pol, name, sizeof(name));
		if (numa_policy_parse(name, &again, err, sizeof(err)) != 0 ||
		    again.np_kind != pol.np_kind ||
		    again.np_node != pol.np_node ||
		    again.np_nodes != pol.np_nodes) {
			fprintf(stderr, "fuzz_numa: '%s' parsed, printed as "
			    "'%s', which parses differently (%s)\n", s, name,
			    err);
			abort();
		}
	}
	(void)numa_nodelist_parse(s, &mask);
	(void)numa_budgets_parse(s, bytes, err, sizeof(err));
	free(s);
	return 0;
}
