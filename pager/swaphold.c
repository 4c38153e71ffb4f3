/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swaphold.c: the table of swap slot holders (swaphold.h has the why).
 *
 * Telling a gone process.  A holder records its pid and its start time;
 * /proc/PID/stat missing, a zombie, or another start time means its
 * process has exited (the pid may be in use again by another).  A process
 * that exec'd keeps pid and start time but has dropped every mapping, the
 * shared state among them: /proc/PID/maps no longer shows that area (its
 * address, which fork keeps, and its inode, which no other mapping
 * shares).  A read that fails for another reason (EACCES: a process that
 * changed its user) leaves the holder alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kmem.h"
#include "log.h"
#include "swaphold.h"
#include "sys.h"
#include "vm.h"

#define SWH_MAPS_BUF	(64 * 1024)	/* /proc/PID/maps read at a time */

size_t
swh_bytes(uint64_t nslots)
{
	return (size_t)((nslots + 63) / 64) * sizeof(uint64_t) * SWAP_HOLDERS;
}

static uint64_t *
swh_map(const struct swap_holders *sh, int h)
{
	return sh->sh_bits + (size_t)h * sh->sh_words;
}

/*
 * swh_stat: state (field 3) and start time (field 22) of /proc/PID/stat,
 * or of /proc/PID/task/TID/stat with tid.
 * => 0, -ENOENT when there is no such process, or another -errno.
 */
static int
swh_stat(pid_t pid, pid_t tid, char *state, uint64_t *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field = 2;

	if (tid != 0)
		(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/stat",
		    (int)pid, (int)tid);
	else
		(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	n = sys_read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ENOENT : (int)n;
	buf[n] = '\0';
	/* the command name (field 2) may hold spaces and parentheses */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -EINVAL;
	p += 2;
	*state = *p;
	for (field = 3; *p != '\0' && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || *p < '0' || *p > '9')
		return -EINVAL;
	*start = strtoull(p, NULL, 10);
	return 0;
}

/*
 * swh_line_is_area: one line of /proc/PID/maps is the area at `area`
 * (with *ino 0: any inode, which *ino is then set to; else that one)
 */
static bool
swh_line_is_area(const char *line, uintptr_t area, unsigned long *ino)
{
	unsigned long lo, hi, off, dmaj, dmin, inode;
	char perms[8];

	if (sscanf(line, "%lx-%lx %7s %lx %lx:%lx %lu", &lo, &hi, perms,
	    &off, &dmaj, &dmin, &inode) != 7 || lo != area ||
	    (*ino != 0 && inode != *ino))
		return false;
	*ino = inode;
	return true;
}

/*
 * swh_live_thread: a thread of process pid that has not exited, when its
 * first thread has (a zombie leader: the process lives on in its other
 * threads, and /proc/PID/maps shows nothing).  No allocation: this runs
 * on upvm's threads, where malloc may touch managed memory.
 * => the thread's id, 0 if none, -errno if the list cannot be read.
 */
static pid_t
swh_live_thread(pid_t pid)
{
	char path[64], buf[4096], state;
	struct dirent64 *de;
	uint64_t start;
	long n, off;
	pid_t tid, found = 0;
	int fd;

	(void)snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -errno;
	while (found == 0 && (n = syscall(SYS_getdents64, fd, buf,
	    sizeof(buf))) > 0)
		for (off = 0; found == 0 && off < n; off += de->d_reclen) {
			de = (struct dirent64 *)(buf + off);
			tid = (pid_t)strtol(de->d_name, NULL, 10);
			if (tid > 0 && tid != pid &&
			    swh_stat(pid, tid, &state, &start) == 0 &&
			    state != 'Z' && state != 'X')
				found = tid;
		}
	close(fd);
	return found;
}

/*
 * swh_maps_has: the maps of process pid (0: this one; with tid, through
 * that thread) show the area (swh_line_is_area).
 * => 1 yes, 0 no, -errno when they cannot be read.
 */
static int
swh_maps_has(pid_t pid, pid_t tid, uintptr_t area, unsigned long *ino)
{
	char path[64], *buf, *line, *nl;
	size_t have = 0;
	ssize_t n;
	int fd, found = 0;

	if (pid == 0)
		(void)snprintf(path, sizeof(path), "/proc/self/maps");
	else if (tid != 0)
		(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/maps",
		    (int)pid, (int)tid);
	else
		(void)snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if ((buf = kmem_alloc(SWH_MAPS_BUF)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (!found && (n = sys_read(fd, buf + have,
	    SWH_MAPS_BUF - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		for (line = buf; !found && (nl = strchr(line, '\n')) != NULL;
		    line = nl + 1) {
			*nl = '\0';
			found = swh_line_is_area(line, area, ino);
		}
		/* keep the partial last line for the next read */
		have = found ? 0 : strlen(line);
		memmove(buf, line, have);
		if (have == SWH_MAPS_BUF - 1)
			have = 0;	/* no line is this long */
	}
	close(fd);
	kmem_free(buf, SWH_MAPS_BUF);
	return n < 0 && !found ? (int)n : found;
}

void
swh_init(struct swap_holders *sh, uint64_t *bits, uint64_t nslots,
    const void *area)
{
	unsigned long ino = 0;

	sh->sh_words = (nslots + 63) / 64;
	sh->sh_bits = bits;
	sh->sh_area = (uintptr_t)area;
	/* without the inode no exec is told apart: holders of exec'd
	   images are then reaped only when their process exits */
	sh->sh_ino = swh_maps_has(0, 0, sh->sh_area, &ino) == 1 ? ino : 0;
	sh->sh_nlive = 0;
}

int
swh_claim(struct swap_holders *sh)
{
	static bool told;
	struct swap_holder *e;
	uint64_t start = 0;
	char state;

	/* our own start time: a read of /proc that cannot fail for us, but
	   if it does, 0 only makes the pid check weaker */
	(void)swh_stat(getpid(), 0, &state, &start);
	for (int h = 0; h < SWAP_HOLDERS; h++) {
		e = &sh->sh_tab[h];
		if (e->sh_state != SWH_FREE)
			continue;
		e->sh_pid = getpid();
		e->sh_start = start;
		e->sh_hi = 0;
		e->sh_held = 0;
		e->sh_state = SWH_LIVE;
		sh->sh_nlive++;
		return h;
	}
	if (!told) {
		told = true;
		upvm_log(LOG_WARN, "swap: %d processes share one swap file; "
		    "the swap slots of process %d are freed only by "
		    "upvm_fini or when the last process closes the file",
		    SWAP_HOLDERS, (int)getpid());
	}
	return SWH_NONE;
}

void
swh_set(struct swap_holders *sh, int h, uint64_t i)
{
	struct swap_holder *e;
	uint64_t *bm;

	if (h == SWH_NONE)
		return;
	e = &sh->sh_tab[h];
	bm = swh_map(sh, h);
	VM_ASSERT(e->sh_state == SWH_LIVE && i / 64 < sh->sh_words);
	VM_ASSERT(!((bm[i / 64] >> (i % 64)) & 1));
	bm[i / 64] |= (uint64_t)1 << (i % 64);
	e->sh_held++;
	e->sh_hi = MAX(e->sh_hi, i + 1);
}

bool
swh_clear(struct swap_holders *sh, int h, uint64_t i)
{
	uint64_t *bm, bit;

	if (h == SWH_NONE)
		return true;
	bm = swh_map(sh, h);
	bit = (uint64_t)1 << (i % 64);
	if (i >= sh->sh_tab[h].sh_hi || !(bm[i / 64] & bit))
		return false;
	bm[i / 64] &= ~bit;
	sh->sh_tab[h].sh_held--;
	return true;
}

uint64_t
swh_next(const struct swap_holders *sh, int h, uint64_t i)
{
	const uint64_t *bm = swh_map(sh, h);
	uint64_t hi = sh->sh_tab[h].sh_hi, w;

	while (i < hi) {
		w = bm[i / 64] & (~(uint64_t)0 << (i % 64));
		if (w != 0) {
			i = (i & ~(uint64_t)63) + (uint64_t)__builtin_ctzll(w);
			return i < hi ? i : UINT64_MAX;
		}
		i = (i & ~(uint64_t)63) + 64;
	}
	return UINT64_MAX;
}

void
swh_free(struct swap_holders *sh, int h)
{
	struct swap_holder *e = &sh->sh_tab[h];

	VM_ASSERT(e->sh_state == SWH_LIVE && e->sh_held == 0);
	e->sh_state = SWH_FREE;
	e->sh_pid = 0;
	e->sh_hi = 0;
	sh->sh_nlive--;
}

bool
swh_gone(const struct swap_holders *sh, pid_t pid, uint64_t start)
{
	unsigned long ino = sh->sh_ino;
	pid_t tid = 0;
	uint64_t now;
	char state;
	int error;

	if ((error = swh_stat(pid, 0, &state, &now)) == -ENOENT)
		return true;
	if (error != 0)
		return false;
	if (start != 0 && now != start)
		return true;		/* the pid is another process's */
	if ((state == 'Z' || state == 'X') &&
	    (tid = swh_live_thread(pid)) <= 0)
		return tid == 0;	/* exited, or not known */
	if (ino == 0)
		return false;
	return swh_maps_has(pid, tid, sh->sh_area, &ino) == 0;
}

const char *
swh_check(const struct swap_holders *sh, const uint32_t *counts,
    uint64_t nslots, uint64_t *badp)
{
	const struct swap_holder *e;
	uint64_t held, i;
	int nlive = 0;

	for (int h = 0; h < SWAP_HOLDERS; h++) {
		e = &sh->sh_tab[h];
		nlive += e->sh_state == SWH_LIVE;
		held = 0;
		for (i = swh_next(sh, h, 0); i != UINT64_MAX;
		    i = swh_next(sh, h, i + 1))
			held++;
		if (e->sh_state == SWH_FREE && (held != 0 || e->sh_hi != 0)) {
			*badp = (uint64_t)h;
			return "a free holder holds slots";
		}
		if (held != e->sh_held) {
			*badp = (uint64_t)h;
			return "a holder's count differs from its bits";
		}
	}
	if (nlive != sh->sh_nlive)
		return "live holders miscounted";
	/* each slot: no more holders than references (only below the
	   live holders' sh_hi can a bit be set) */
	for (int h = 0; h < SWAP_HOLDERS; h++)
		for (i = swh_next(sh, h, 0); i != UINT64_MAX && i < nslots;
		    i = swh_next(sh, h, i + 1)) {
			unsigned bits = 0;

			for (int k = 0; k < SWAP_HOLDERS; k++)
				if (i < sh->sh_tab[k].sh_hi &&
				    (swh_map(sh, k)[i / 64] >> (i % 64)) & 1)
					bits++;
			if (bits > counts[i]) {
				*badp = i + 1;
				return "more holders than references at slot";
			}
		}
	return NULL;
}
