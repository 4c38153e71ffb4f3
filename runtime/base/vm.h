/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vm.h: basic types, page arithmetic and assertions shared by every module.
 *
 * Addresses are vaddr_t, sizes vsize_t, offsets into a pager voff_t, as in
 * UVM.  VM_ASSERT() is for programmer errors only; it compiles away unless
 * the build enables debug_checks (meson -Ddebug_checks=true, the default).
 */
#ifndef UPVM_VM_H
#define UPVM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uintptr_t vaddr_t;
typedef size_t vsize_t;
typedef uint64_t voff_t;
#define VOFF_MAX	UINT64_MAX

#define PAGE_SHIFT	12
#define PAGE_SIZE	((vsize_t)1 << PAGE_SHIFT)
#define PAGE_MASK	(PAGE_SIZE - 1)

#define trunc_page(x)	((vaddr_t)(x) & ~(vaddr_t)PAGE_MASK)
#define round_page(x)	(((vaddr_t)(x) + PAGE_MASK) & ~(vaddr_t)PAGE_MASK)
#define page_aligned(x)	(((vaddr_t)(x) & PAGE_MASK) == 0)
#define atop(x)		((vaddr_t)(x) >> PAGE_SHIFT)
#define ptoa(x)		((vaddr_t)(x) << PAGE_SHIFT)

/* the largest region one entry may cover: amap slots are int */
#define VM_MAX_REGION	((vsize_t)1 << 43)		/* 8 TiB */
/* x86-64 user address space (4-level paging) */
#define VM_MAX_ADDRESS	((vaddr_t)1 << 47)

/* protections, inheritance and advice of a map entry (UVM's values) */
#define VM_PROT_NONE	0x0
#define VM_PROT_READ	0x1
#define VM_PROT_WRITE	0x2
#define VM_PROT_EXEC	0x4
#define VM_PROT_RW	(VM_PROT_READ | VM_PROT_WRITE)
#define VM_PROT_ALL	(VM_PROT_RW | VM_PROT_EXEC)
/* mmap's PROT_* bits have the same values on Linux */
#define vm_prot(prot)	((uint8_t)((prot) & VM_PROT_ALL))

#define VM_INH_SHARE	0	/* child shares the pages */
#define VM_INH_COPY	1	/* child gets a copy-on-write copy (default) */
#define VM_INH_NONE	2	/* child gets nothing */
#define VM_INH_ZERO	3	/* child gets zero-fill pages */
#define VM_INH_NONEZERO	4	/* child gets nothing (MADV_DONTFORK over
				   MADV_WIPEONFORK: the kernel keeps both
				   bits; a MADV_DOFORK makes it ZERO) */

#define VM_ADV_NORMAL		0
#define VM_ADV_RANDOM		1
#define VM_ADV_SEQUENTIAL	2

#define UPVM_API	__attribute__((visibility("default")))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#define container_of(p, type, member)					\
	((type *)((char *)(p) - offsetof(type, member)))

void vm_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn, cold));

/* vm_failed: an assertion failed; upvm's state is not to be trusted */
extern _Atomic bool vm_failed;

#ifdef UPVM_DEBUG_CHECKS
#define VM_ASSERT(e)							\
	(likely(e) ? (void)0 : vm_assert_fail(#e, __FILE__, __LINE__))
#else
#define VM_ASSERT(e)	((void)0)
#endif

#endif /* UPVM_VM_H */
