/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vnode.h: the vnode pager: the pages of a file (UVM's uvm_vnode).
 *
 * A vnode is the object below the file-backed entries of a process
 * (map.h, e_obj): one per open file per access mode, found by the file's
 * device and inode (vnode_find), so every region that maps a file reads
 * and writes it through the same object.  The pager has its own
 * descriptor of the file, opened through /proc/self/fd (the caller may
 * close theirs), O_DIRECT where the file system allows it so the kernel's
 * page cache holds no second copy; buffered otherwise, the range dropped
 * from the cache after each transfer.
 *
 * Offsets are file bytes, page aligned.  The file's end follows mmap(2):
 *  - a get reads zeros past the end (the rest of the last page, or whole
 *    pages): whether a page wholly past the end may be read at all is the
 *    caller's question (SIGBUS), answered with vnode_size(); a range in a
 *    hole of a sparse file (lseek SEEK_DATA) reads zeros with no I/O;
 *  - a put writes the bytes before the end only, never past it: a page
 *    partly past the end keeps the file's size, a page wholly past it
 *    writes nothing.  With O_DIRECT the partial last page goes through a
 *    buffered descriptor (O_DIRECT transfers whole blocks).
 * I/O goes through ring queues (ringq.h) shared with the swap pager; a
 * request with no queue is done with pread/pwrite.  pgo_remember /
 * pgo_unchanged keep a keyed hash per file page read, for the move
 * pageout protocol (pager.h).
 *
 * Locks protecting struct members in this file:
 *	I  immutable after creation   a  atomic   p  vn_pager.pgr_lock
 *	r  the registry's lock (vnode.c)
 */
#ifndef UPVM_VNODE_H
#define UPVM_VNODE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "pager.h"

struct vnode {
	struct pager	 vn_pager;	/* first: the pager backend */
	int		 vn_fd;		/* [I] the I/O descriptor */
	int		 vn_bfd;	/* [I] buffered, for partial pages
					   (vn_fd itself when !vn_direct) */
	bool		 vn_direct;	/* [I] vn_fd is O_DIRECT */
	bool		 vn_writable;	/* [I] opened for writing */
	int		 vn_flags;	/* [I] VNODE_*, the registry's key */
	dev_t		 vn_dev;	/* [I] the file */
	ino_t		 vn_ino;	/* [I] */
	atomic_ullong	 vn_size;	/* [a] bytes, as last seen */
	uint64_t	 vn_hashkey;	/* [I] page_hash() key: random */
	uint64_t	*vn_hash;	/* [p] hash per page remembered, 0:
					   none (kmem, vn_nhash words) */
	size_t		 vn_nhash;	/* [p] */
	atomic_int	 vn_fail[2];	/* [a] vnode_inject_failure: the Nth
					   next read [0] / write [1] fails */
	struct vnode	*vn_next;	/* [r] registry list */
	char		 vn_where[64];	/* [I] for messages */
};

/* vnode_find's flags */
#define VNODE_WRITABLE	0x1	/* for shared writable mappings: fd must be
				   open for reading and writing */
#define VNODE_BUFFERED	0x2	/* never O_DIRECT */

/*
 * vnode_find: the vnode of the file open on fd, made if the process has
 * none for that file and flags.  One more
 * reference (pager_unref() drops it; the last closes the file).
 * => 0, or -errno with one log line (-EBADF: fd not open, or not for
 *    writing when writable; -EACCES: fd is write-only; -ENODEV: not a
 *    regular file).
 */
int vnode_find(int fd, int flags, struct vnode **out);

/*
 * vnode_punch: MADV_REMOVE: the file's blocks of [off, off + len) are freed
 * (a hole; the range reads as zeros).  => -EACCES: the vnode is not
 * writable; else fallocate's error (-EOPNOTSUPP where the file system
 * cannot punch holes).
 */
int vnode_punch(struct vnode *vn, uint64_t off, uint64_t len);

/* vnode_mapped: some vnode of the process is the file (dev, ino);
   vnode_any: the process has vnodes at all (no lock: a hint) */
bool vnode_mapped(dev_t, ino_t);
bool vnode_any(void);

/* vnode_size: the file's size in bytes, asked of the kernel when
   refresh (every fault on a file page, every write), else as last seen */
uint64_t vnode_size(struct vnode *, bool refresh);

/* vnode_sync: make the file's written data durable (fdatasync).
   => 0 or -errno */
int vnode_sync(struct vnode *);

/*
 * vnode_write_bytes: write len bytes of buf at byte offset off (any
 * alignment), through the buffered descriptor; the bytes at or past the
 * file's end (asked of the kernel) are not written, so the file never
 * grows.  For the part of a page that a write(2) beside a mapping did not
 * cover (writeback.h, wb_overwritten).
 * => 0 or -errno (-EBADF: the vnode is not writable; -EIO: short write).
 */
int vnode_write_bytes(struct vnode *, uint64_t off, const void *buf,
    size_t len);
/* vnode_inject_failure: the nth next read (write: write) fails with
   -EIO before it reaches the disk (0 disarms), as swap_inject_failure */
void vnode_inject_failure(struct vnode *, bool write, int nth);

extern const struct pager_ops vnode_pager_ops;

#endif /* UPVM_VNODE_H */
