/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * policy.c: NUMA placement and demotion policy (pure; see policy.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"

#define ERR(...)	(snprintf(err, (size_t)errlen, __VA_ARGS__), -EINVAL)

static const char *const kind_names[] = {
	[NUMA_NONE] = "none", [NUMA_LOCAL] = "local", [NUMA_BIND] = "bind",
	[NUMA_PREFERRED] = "preferred", [NUMA_INTERLEAVE] = "interleave",
	[NUMA_NEAREST] = "nearest",
};

/* parse_node: a node number 0..NUMA_NODES_MAX-1 from s[0..len) */
static int
parse_node(const char *s, size_t len)
{
	int v = 0;

	if (len == 0 || len > 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < NUMA_NODES_MAX ? v : -1;
}

int
numa_nodelist_parse(const char *s, nodemask_t64 *maskp)
{
	nodemask_t64 mask = 0;
	const char *p = s, *end, *dash;
	int lo, hi;

	do {
		end = p + strcspn(p, ",;");
		dash = memchr(p, '-', (size_t)(end - p));
		lo = parse_node(p, (size_t)((dash != NULL ? dash : end) - p));
		hi = dash == NULL ? lo : parse_node(dash + 1,
		    (size_t)(end - dash - 1));
		if (lo < 0 || hi < lo)
			return -EINVAL;
		for (int n = lo; n <= hi; n++)
			mask |= 1ull << n;
		p = end + 1;
	} while (*end != '\0');
	*maskp = mask;
	return 0;
}

int
numa_policy_parse(const char *s, struct numa_policy *pol, char *err,
    int errlen)
{
	const char *colon = strchr(s, ':');
	size_t klen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	int kind = -1;

	for (int k = 0; k < (int)(sizeof(kind_names) / sizeof(*kind_names));
	    k++)
		if (strlen(kind_names[k]) == klen &&
		    strncmp(s, kind_names[k], klen) == 0)
			kind = k;
	if (kind < 0)
		return ERR("unknown NUMA policy \"%s\": want none, local, "
		    "bind:N, preferred:N, interleave[:NODES] or nearest", s);
	*pol = (struct numa_policy){ .np_kind = kind, .np_node = -1 };
	switch (kind) {
	case NUMA_BIND:
	case NUMA_PREFERRED:
		if (colon == NULL || (pol->np_node = parse_node(colon + 1,
		    strlen(colon + 1))) < 0)
			return ERR("NUMA policy \"%s\" needs a node: %s:N "
			    "with N from 0 to %d", s, kind_names[kind],
			    NUMA_NODES_MAX - 1);
		return 0;
	case NUMA_INTERLEAVE:
		if (colon != NULL && numa_nodelist_parse(colon + 1,
		    &pol->np_nodes) != 0)
			return ERR("NUMA policy \"%s\": bad node list (want "
			    "e.g. interleave:0,2 or interleave:0-3)", s);
		return 0;
	default:
		if (colon != NULL)
			return ERR("NUMA policy \"%s\" takes no argument", s);
		return 0;
	}
}

nodemask_t64
numa_allowed(const struct numa_policy *pol, const struct numa_topo *t)
{
	if (pol->np_kind == NUMA_BIND)
		return 1ull << pol->np_node;
	if (pol->np_kind == NUMA_INTERLEAVE && pol->np_nodes != 0)
		return pol->np_nodes;
	return t->nt_memory;
}

int
numa_policy_check(const struct numa_policy *pol, const struct numa_topo *t,
    char *err, int errlen)
{
	nodemask_t64 want = 0;
	char name[64];

	if (pol->np_kind == NUMA_BIND || pol->np_kind == NUMA_PREFERRED)
		want = 1ull << pol->np_node;
	else if (pol->np_kind == NUMA_INTERLEAVE)
		want = pol->np_nodes;
	if ((want & ~t->nt_memory) == 0)
		return 0;
	numa_policy_name(pol, name, sizeof(name));
	return ERR("NUMA policy %s names node %d, which %s; nodes with "
	    "memory: mask %#llx", name, __builtin_ctzll(want & ~t->nt_memory),
	    (want & ~t->nt_memory & t->nt_present) ? "has no memory" :
	    "does not exist", (unsigned long long)t->nt_memory);
}

void
numa_policy_name(const struct numa_policy *pol, char *buf, int len)
{
	int off = snprintf(buf, (size_t)len, "%s", kind_names[pol->np_kind]);
	const char *sep = ":";

	if (pol->np_kind == NUMA_BIND || pol->np_kind == NUMA_PREFERRED)
		snprintf(buf + off, (size_t)(len - off), ":%d", pol->np_node);
	for (int n = 0; pol->np_kind == NUMA_INTERLEAVE && n < NUMA_NODES_MAX &&
	    off < len; n++)
		if (pol->np_nodes & (1ull << n)) {
			off += snprintf(buf + off, (size_t)(len - off), "%s%d",
			    sep, n);
			sep = ",";
		}
}

int
numa_budgets_parse(const char *s, uint64_t bytes[NUMA_NODES_MAX], char *err,
    int errlen)
{
	const char *p = s, *end, *eq;
	nodemask_t64 seen = 0;
	char size[32];
	int node;

	memset(bytes, 0, sizeof(uint64_t) * NUMA_NODES_MAX);
	do {
		end = p + strcspn(p, ",;");
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || (node = parse_node(p, (size_t)(eq - p))) < 0)
			return ERR("node budget \"%.*s\": want NODE=SIZE, such "
			    "as 0=1G,1=4G", (int)(end - p), p);
		if ((size_t)(end - eq - 1) >= sizeof(size))
			return ERR("node budget \"%.*s\": size too long",
			    (int)(end - p), p);
		memcpy(size, eq + 1, (size_t)(end - eq - 1));
		size[end - eq - 1] = '\0';
		if (config_parse_size(size, false, &bytes[node]) != 0 ||
		    bytes[node] == 0)
			return ERR("node budget \"%.*s\": \"%s\" is not a size "
			    "such as 512M or 4G", (int)(end - p), p, size);
		if (seen & (1ull << node))
			return ERR("node budget: node %d named twice", node);
		seen |= 1ull << node;
		p = end + 1;
	} while (*end != '\0');
	return 0;
}

void
numa_place(const struct numa_policy *pol, const struct numa_topo *t,
    int local, const struct numa_room_ops *ops, void *arg, long npages,
    struct numa_target *out)
{
	int order[NUMA_NODES_MAX], n;

	*out = (struct numa_target){ .nt_mode = NUMA_MODE_PREFERRED,
	    .nt_node = local, .nt_mask = 1ull << local };
	switch (pol->np_kind) {
	case NUMA_NONE:
		*out = (struct numa_target){ .nt_mode = NUMA_MODE_DEFAULT,
		    .nt_node = -1 };
		return;
	case NUMA_LOCAL:
		break;
	case NUMA_BIND:
	case NUMA_PREFERRED:
		out->nt_mode = pol->np_kind == NUMA_BIND ? NUMA_MODE_BIND :
		    NUMA_MODE_PREFERRED;
		out->nt_node = pol->np_node;
		out->nt_mask = 1ull << pol->np_node;
		return;
	case NUMA_INTERLEAVE:
		*out = (struct numa_target){ .nt_mode = NUMA_MODE_INTERLEAVE,
		    .nt_node = -1, .nt_mask = numa_allowed(pol, t) };
		return;
	case NUMA_NEAREST:
		n = numa_node_order(t, local, order);
		for (int i = 0; i < n; i++)
			if (ops->nr_has_room(arg, order[i], npages)) {
				out->nt_node = order[i];
				out->nt_mask = 1ull << order[i];
				return;
			}
		break;
	}
	/* local: a memory-less node's CPU takes the nearest memory */
	if (!(t->nt_memory & (1ull << local)) &&
	    numa_node_order(t, local, order) > 0) {
		out->nt_node = order[0];
		out->nt_mask = 1ull << order[0];
	}
}

int
numa_demote_target(const struct numa_topo *t, int from, nodemask_t64 allowed,
    const struct numa_room_ops *ops, void *arg, long npages)
{
	int order[NUMA_NODES_MAX], n = numa_node_order(t, from, order);

	for (int i = 0; i < n; i++)
		if (order[i] != from && (allowed & (1ull << order[i])) &&
		    ops->nr_has_room(arg, order[i], npages))
			return order[i];
	return -1;
}
