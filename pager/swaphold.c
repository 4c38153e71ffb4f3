/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swaphold.c: the table of swap slot holders (swaphold.h has the why).
 *
 * Telling a gone process.  A wrong "gone" loses data (the slots are
 * reused under a live process), a wrong "alive" leaks slots: so every
 * doubt is "alive".  A holder records its pid, its start time and its pid
 * namespace, and is reapable only if /proc showed it itself as that pid
 * with that start time when it claimed the entry (no /proc, or a /proc of
 * another pid namespace, and it never is).  A reaper in another pid
 * namespace leaves it alone.  Then:
 *  - kill(pid, 0) fails with ESRCH: no such process (kill, unlike /proc,
 *    sees processes that hidepid hides);
 *  - another start time in /proc/PID/stat: the pid is another process's;
 *  - a zombie first thread and no other thread alive (a process whose
 *    first thread exited lives on in the others);
 *  - maps that show mappings, but not the shared area at its address with
 *    its inode: the process exec'd (an exec keeps pid and start time and
 *    drops every mapping).  Maps that read empty (a process tearing its
 *    memory down, or a thread that just exited) say nothing.
 * A read that fails (EACCES: a process that changed its user) says
 * nothing either.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kmem.h"
#include "log.h"
#include "procstat.h"
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
 * swh_stat: state (field 3) and start time (field 22) of the stat file
 * proc_open names (pid 0: this process's).
 * => 0, -ENOENT when there is no such process, or another -errno.
 */
static int
swh_stat(pid_t pid, pid_t tid, char *state, uint64_t *start)
{
	char buf[1024];
	const char *f3, *f22;
	int error;

	if ((error = proc_stat_read(pid, tid, buf, sizeof(buf), &f3)) != 0)
		return error;
	if ((f22 = proc_stat_field(f3, 22)) == NULL || *f22 < '0' ||
	    *f22 > '9')
		return -EINVAL;
	*state = *f3;
	*start = strtoull(f22, NULL, 10);
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
 * => the thread's id, 0 if none, -errno if a thread or the list could
 *    not be read (not known).
 */
static pid_t
swh_live_thread(pid_t pid)
{
	char buf[4096], state;
	struct dirent64 *de;
	uint64_t start;
	long n, off;
	pid_t tid, found = 0;
	int fd, error;

	if ((fd = proc_open(pid, 0, "task")) < 0)
		return fd;
	while (found == 0 && (n = syscall(SYS_getdents64, fd, buf,
	    sizeof(buf))) > 0)
		for (off = 0; found == 0 && off < n; off += de->d_reclen) {
			de = (struct dirent64 *)(buf + off);
			tid = (pid_t)strtol(de->d_name, NULL, 10);
			if (tid <= 0 || tid == pid)
				continue;
			error = swh_stat(pid, tid, &state, &start);
			if (error == 0 && state != 'Z' && state != 'X')
				found = tid;
			else if (error != 0 && error != -ENOENT)
				found = -EAGAIN;	/* not known */
		}
	close(fd);
	return n < 0 && found == 0 ? -EIO : found;
}

/*
 * swh_maps_has: the maps of process pid (0: this one; with tid, through
 * that thread) show the area (swh_line_is_area).
 * => 1 yes, 0 no, -ENODATA when they show no mapping at all (memory
 *    being torn down: not known), -errno when they cannot be read.
 */
static int
swh_maps_has(pid_t pid, pid_t tid, uintptr_t area, unsigned long *ino)
{
	char *buf, *line, *nl;
	size_t have = 0, lines = 0;
	ssize_t n;
	int fd, found = 0;

	if ((fd = proc_open(pid, tid, "maps")) < 0)
		return fd;
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
			lines++;
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
	if (found)
		return 1;
	return n < 0 ? -EIO : lines == 0 ? -ENODATA : 0;
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

/* swh_pidns: this process's pid namespace (its inode), 0 if not known */
static uint64_t
swh_pidns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

bool
swh_self(pid_t *pid, uint64_t *start, uint64_t *pidns)
{
	uint64_t mine;
	char state;

	*pid = getpid();
	*pidns = swh_pidns();
	/* /proc/PID must be this process: /proc of this pid namespace */
	return *pidns != 0 && swh_stat(*pid, 0, &state, start) == 0 &&
	    swh_stat(0, 0, &state, &mine) == 0 && mine == *start;
}

bool
swh_child(pid_t child, uint64_t *start, uint64_t *pidns)
{
	uint64_t mine;
	pid_t self;
	char state;

	return swh_self(&self, &mine, pidns) &&
	    swh_stat(child, 0, &state, start) == 0;
}

/* swh_identify: entry e is now in state st, for the process described */
static void
swh_identify(struct swap_holder *e, enum swh_state st, pid_t pid,
    uint64_t start, uint64_t pidns, bool reapable)
{
	e->sh_pid = pid;
	e->sh_start = start;
	e->sh_pidns = pidns;
	e->sh_reapable = reapable;
	e->sh_state = st;
}

/* swh_take: free entry h, in state st for pid (0: pending) */
static void
swh_take(struct swap_holders *sh, int h, enum swh_state st, pid_t pid,
    uint64_t start, uint64_t pidns, bool reapable)
{
	struct swap_holder *e = &sh->sh_tab[h];

	e->sh_hi = 0;
	e->sh_held = 0;
	swh_identify(e, st, pid, start, pidns, reapable);
	sh->sh_nlive++;
}

/* swh_free_entry: the first free entry, or SWH_NONE */
static int
swh_free_entry(const struct swap_holders *sh)
{
	for (int h = 0; h < SWAP_HOLDERS; h++)
		if (sh->sh_tab[h].sh_state == SWH_FREE)
			return h;
	return SWH_NONE;
}

int
swh_claim(struct swap_holders *sh, pid_t pid, uint64_t start,
    uint64_t pidns, bool reapable)
{
	int h = swh_free_entry(sh);

	if (h != SWH_NONE)
		swh_take(sh, h, SWH_LIVE, pid, start, pidns, reapable);
	return h;
}

int
swh_pend(struct swap_holders *sh, uint64_t *nonce)
{
	int h = swh_free_entry(sh);

	*nonce = ++sh->sh_pends;
	if (h != SWH_NONE)
		swh_take(sh, h, SWH_PENDING, 0, *nonce, 0, false);
	return h;
}

bool
swh_pending(const struct swap_holders *sh, int h, uint64_t nonce)
{
	return sh->sh_tab[h].sh_state == SWH_PENDING &&
	    sh->sh_tab[h].sh_start == nonce;
}

bool
swh_adopt(struct swap_holders *sh, int h, uint64_t nonce, pid_t pid,
    uint64_t start, uint64_t pidns, bool reapable)
{
	struct swap_holder *e = &sh->sh_tab[h];

	if (e->sh_state == SWH_LIVE)
		return e->sh_pid == pid;
	if (!swh_pending(sh, h, nonce))
		return false;
	swh_identify(e, SWH_LIVE, pid, start, pidns, reapable);
	return true;
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
	VM_ASSERT(e->sh_state != SWH_FREE && i / 64 < sh->sh_words);
	VM_ASSERT(!((bm[i / 64] >> (i % 64)) & 1));
	/* sh_hi first: a process killed here leaves no bit past it, where
	   a later owner of the entry would find it as its own */
	e->sh_hi = MAX(e->sh_hi, i + 1);
	bm[i / 64] |= (uint64_t)1 << (i % 64);
	e->sh_held++;
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

	/* (sh_held may be off by one for a process killed in swh_set or
	   swh_clear; its bits are all clear now) */
	VM_ASSERT(e->sh_state != SWH_FREE);
	e->sh_held = 0;
	e->sh_state = SWH_FREE;
	e->sh_pid = 0;
	e->sh_hi = 0;
	sh->sh_nlive--;
}

bool
swh_gone(const struct swap_holders *sh, const struct swap_holder *e,
    uint64_t pidns)
{
	unsigned long ino = sh->sh_ino;
	pid_t tid = 0;
	uint64_t now;
	char state;

	if (!e->sh_reapable || e->sh_pidns != pidns)
		return false;
	if (kill(e->sh_pid, 0) != 0 && errno == ESRCH)
		return true;
	if (swh_stat(e->sh_pid, 0, &state, &now) != 0)
		return false;
	if (now != e->sh_start)
		return true;		/* the pid is another process's */
	if ((state == 'Z' || state == 'X') &&
	    (tid = swh_live_thread(e->sh_pid)) <= 0)
		return tid == 0;	/* every thread exited; or not known */
	if (ino == 0)
		return false;
	return swh_maps_has(e->sh_pid, tid, sh->sh_area, &ino) == 0;
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
		nlive += e->sh_state != SWH_FREE;
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
	if (nlive != sh->sh_nlive) {
		*badp = (uint64_t)nlive;
		return "live holders miscounted";
	}
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
