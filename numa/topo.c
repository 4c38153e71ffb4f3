/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * topo.c: the NUMA topology from libnuma (the only user of <numa.h>).
 *
 * libnuma reads the kernel's view: /sys/devices/system/node for the nodes,
 * their CPUs and memory (from SRAT) and their distances (from SLIT).
 * Everything is read once; afterwards the topology is plain data.
 */
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topo.h"

static void
topo_one_node(struct numa_topo *t)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);

	memset(t, 0, sizeof(*t));
	t->nt_nnodes = 1;
	t->nt_present = t->nt_memory = 1;
	t->nt_mem_bytes[0] = (uint64_t)(pages > 0 ? pages : 0) *
	    (uint64_t)psize;
	t->nt_dist[0][0] = 10;
	t->nt_maxcpu = (int)(ncpu > 0 ? (ncpu < NUMA_CPUS_MAX ? ncpu :
	    NUMA_CPUS_MAX) : 1);
	t->nt_ncpus[0] = t->nt_maxcpu;
	for (int c = 0; c < NUMA_CPUS_MAX; c++)
		t->nt_cpu_node[c] = c < t->nt_maxcpu ? 0 : -1;
	t->nt_fallback = true;
}

void
numa_topo_probe(struct numa_topo *t)
{
	int maxnode, ncpu, node, d;
	long long size;

	if (numa_available() < 0) {
		topo_one_node(t);
		return;
	}
	memset(t, 0, sizeof(*t));
	maxnode = numa_max_node();
	t->nt_nnodes = maxnode + 1 < NUMA_NODES_MAX ? maxnode + 1 :
	    NUMA_NODES_MAX;
	for (int n = 0; n < t->nt_nnodes; n++) {
		if (!numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)n))
			continue;
		t->nt_present |= 1ull << n;
		size = numa_node_size64(n, NULL);
		if (size > 0) {
			t->nt_mem_bytes[n] = (uint64_t)size;
			t->nt_memory |= 1ull << n;
		}
		for (int m = 0; m < t->nt_nnodes; m++) {
			d = numa_distance(n, m);
			t->nt_dist[n][m] = (uint8_t)(d > 0 ? d : n == m ?
			    10 : 20);
		}
	}
	ncpu = numa_num_configured_cpus();
	t->nt_maxcpu = ncpu < NUMA_CPUS_MAX ? ncpu : NUMA_CPUS_MAX;
	for (int c = 0; c < NUMA_CPUS_MAX; c++) {
		node = c < t->nt_maxcpu ? numa_node_of_cpu(c) : -1;
		t->nt_cpu_node[c] = node >= 0 && node < t->nt_nnodes ? node :
		    -1;
		if (t->nt_cpu_node[c] >= 0)
			t->nt_ncpus[node]++;
	}
	if (t->nt_memory == 0)		/* nothing usable: act as one node */
		topo_one_node(t);
}

int
numa_topo_build(struct numa_topo *t, int n, const int *dist,
    const int *ncpus, const uint64_t *mem_bytes)
{
	int cpu = 0;

	if (n < 1 || n > NUMA_NODES_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if ((i == j && dist[i * n + j] != 10) ||
			    (i != j && dist[i * n + j] <= 10) ||
			    dist[i * n + j] > 255)
				return -EINVAL;
	memset(t, 0, sizeof(*t));
	t->nt_nnodes = n;
	for (int c = 0; c < NUMA_CPUS_MAX; c++)
		t->nt_cpu_node[c] = -1;
	for (int i = 0; i < n; i++) {
		t->nt_present |= 1ull << i;
		if (mem_bytes[i] > 0)
			t->nt_memory |= 1ull << i;
		t->nt_mem_bytes[i] = mem_bytes[i];
		for (int j = 0; j < n; j++)
			t->nt_dist[i][j] = (uint8_t)dist[i * n + j];
		for (int k = 0; k < ncpus[i] && cpu < NUMA_CPUS_MAX; k++)
			t->nt_cpu_node[cpu++] = i;
		t->nt_ncpus[i] = ncpus[i];
	}
	t->nt_maxcpu = cpu;
	return 0;
}

int
numa_node_order(const struct numa_topo *t, int from, int *order)
{
	int n = 0, d, k;

	for (int i = 0; i < t->nt_nnodes; i++) {
		if (!(t->nt_memory & (1ull << i)))
			continue;
		/* insertion by (distance, node): `from` has the least */
		d = i == from ? 0 : t->nt_dist[from][i];
		for (k = n; k > 0 && (order[k - 1] == from ? 0 :
		    t->nt_dist[from][order[k - 1]]) > d; k--)
			order[k] = order[k - 1];
		order[k] = i;
		n++;
	}
	return n;
}

/*
 * numa_node_free reads sysfs itself, with no stdio: fault threads call it,
 * and stdio's buffers come from malloc, which under `upvm run` may hand
 * out managed memory (a fault thread must never fault on it).
 */
uint64_t
numa_node_free(const struct numa_topo *t, int node)
{
	char path[64], buf[2048], *p;
	ssize_t n;
	int fd;

	if (t->nt_fallback)
		return (uint64_t)sysconf(_SC_AVPHYS_PAGES) *
		    (uint64_t)sysconf(_SC_PAGESIZE);
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo",
	    node);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return t->nt_mem_bytes[node];
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	/* "Node 0 MemFree:         1234 kB" */
	if ((p = strstr(buf, "MemFree:")) == NULL)
		return t->nt_mem_bytes[node];
	return strtoull(p + 8, NULL, 10) * 1024;
}

void
numa_topo_describe(const struct numa_topo *t, char *buf, int len)
{
	int off, nodes = __builtin_popcountll(t->nt_present);

	off = snprintf(buf, (size_t)len, "%d node%s%s:", nodes,
	    nodes == 1 ? "" : "s", t->nt_fallback ? " (no NUMA)" : "");
	for (int n = 0; n < t->nt_nnodes && off > 0 && off < len; n++)
		if (t->nt_present & (1ull << n))
			off += snprintf(buf + off, (size_t)(len - off),
			    " %d (%d CPUs, %llu MiB)", n, t->nt_ncpus[n],
			    (unsigned long long)(t->nt_mem_bytes[n] >> 20));
}
