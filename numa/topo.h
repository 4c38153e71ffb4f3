/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * topo.h: the NUMA topology, as libnuma reports it from the ACPI SRAT
 * (which CPUs and memory belong to which node) and SLIT (the distance
 * matrix).  topo.c is the only file that includes <numa.h>.
 *
 * A topology is pure data once built: numa_topo_probe() fills one in at
 * start-up, numa_topo_build() makes one from given figures (the policy
 * tests).  Nodes are numbered as the kernel numbers them; a node number
 * below nt_nnodes without memory or CPUs (a hole) has nt_present false.
 */
#ifndef UPVM_NUMA_TOPO_H
#define UPVM_NUMA_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#define NUMA_NODES_MAX	64	/* node masks are 64-bit words */
#define NUMA_CPUS_MAX	1024

typedef uint64_t nodemask_t64;

struct numa_topo {
	int		nt_nnodes;		/* highest node + 1 */
	nodemask_t64	nt_present;		/* nodes that exist */
	nodemask_t64	nt_memory;		/* nodes with memory */
	uint64_t	nt_mem_bytes[NUMA_NODES_MAX];	/* node size */
	int		nt_ncpus[NUMA_NODES_MAX];	/* CPUs per node */
	uint8_t		nt_dist[NUMA_NODES_MAX][NUMA_NODES_MAX];
	int		nt_cpu_node[NUMA_CPUS_MAX];	/* -1: no such CPU */
	int		nt_maxcpu;		/* highest CPU + 1 */
	bool		nt_fallback;		/* libnuma said no NUMA: one
						   node of all memory/CPUs */
};

/*
 * numa_topo_probe: the running machine's topology.  Without NUMA support
 * (numa_available() < 0) it is one node 0 holding every CPU and all
 * memory, with nt_fallback set.  Never fails.
 */
void numa_topo_probe(struct numa_topo *);

/*
 * numa_topo_build: a topology of n nodes from a distance matrix (n * n,
 * row-major), the CPUs per node (contiguous blocks, node 0 first) and the
 * memory per node in bytes (0: memory-less).
 * => 0, or -EINVAL (n out of 1..NUMA_NODES_MAX, a diagonal not 10, a
 *    distance below 10).
 */
int numa_topo_build(struct numa_topo *, int n, const int *dist,
    const int *ncpus, const uint64_t *mem_bytes);

/* numa_cpu_node: the node of a CPU, or 0 for an unknown CPU */
static inline int
numa_cpu_node(const struct numa_topo *t, int cpu)
{
	if (cpu < 0 || cpu >= NUMA_CPUS_MAX || cpu >= t->nt_maxcpu ||
	    t->nt_cpu_node[cpu] < 0)
		return 0;
	return t->nt_cpu_node[cpu];
}

static inline int
numa_distance_of(const struct numa_topo *t, int from, int to)
{
	return t->nt_dist[from][to];
}

/*
 * numa_node_order: the nodes with memory, nearest to `from` first (by
 * distance, then by node number; `from` itself first when it has memory).
 * => the number of nodes written to order[] (NUMA_NODES_MAX entries).
 */
int numa_node_order(const struct numa_topo *, int from, int *order);

/*
 * numa_node_free: the free bytes of a node now, as the kernel says
 * (numa_node_size64); the node's size where the kernel cannot tell.
 */
uint64_t numa_node_free(const struct numa_topo *, int node);

/* numa_topo_describe: one line, "2 nodes: 0 (2 CPUs, 1024 MiB) ..." */
void numa_topo_describe(const struct numa_topo *, char *buf, int len);

#endif /* UPVM_NUMA_TOPO_H */
