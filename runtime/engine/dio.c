/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dio.c: direct reads into managed memory (dio.h says why).
 */
#include <limits.h>

#include "dio.h"

static bool
dio_overlaps(vaddr_t s1, vaddr_t e1, vaddr_t s2, vaddr_t e2)
{
	return s1 < e2 && s2 < e1;
}

int
dio_begin(struct dio_table *dt, vaddr_t start, vaddr_t end)
{
	unsigned long zero;

	if (start == 0)
		start = 1;	/* 0 marks a free slot */
	for (int i = 0; i < DIO_ACTIVE; i++) {
		zero = 0;
		if (atomic_load(&dt->dt_active[i].dr_start) != 0 ||
		    !atomic_compare_exchange_strong(
		    &dt->dt_active[i].dr_start, &zero, ULONG_MAX))
			continue;
		/* claimed (start ULONG_MAX overlaps nothing yet): the end,
		   then the start make it visible */
		atomic_store(&dt->dt_active[i].dr_end, end);
		atomic_store(&dt->dt_active[i].dr_start, start);
		return i;
	}
	atomic_fetch_add(&dt->dt_overflow, 1);
	return -1;
}

void
dio_end(struct dio_table *dt, int slot, vaddr_t start, vaddr_t end)
{
	uint64_t seq = atomic_fetch_add(&dt->dt_seq, 1) + 1;
	struct dio_range *r = &dt->dt_ended[seq % DIO_ENDED];

	/* logged as ended before it stops being active: a look sees it in
	   one place or the other (a half-written entry reads as overlap) */
	atomic_store(&r->dr_seq, 0);
	atomic_store(&r->dr_start, start);
	atomic_store(&r->dr_end, end);
	atomic_store(&r->dr_seq, seq);
	if (slot < 0)
		atomic_fetch_sub(&dt->dt_overflow, 1);
	else
		atomic_store(&dt->dt_active[slot].dr_start, 0);
}

uint64_t
dio_now(struct dio_table *dt)
{
	return atomic_load(&dt->dt_seq);
}

bool
dio_overlapped(struct dio_table *dt, uint64_t since, vaddr_t start,
    vaddr_t end)
{
	uint64_t now = atomic_load(&dt->dt_seq);
	vaddr_t s;

	if (atomic_load(&dt->dt_overflow) > 0 || now - since >= DIO_ENDED)
		return true;
	for (int i = 0; i < DIO_ACTIVE; i++) {
		s = atomic_load(&dt->dt_active[i].dr_start);
		if (s == ULONG_MAX || (s != 0 && dio_overlaps(s,
		    atomic_load(&dt->dt_active[i].dr_end), start, end)))
			return true;
	}
	for (uint64_t q = since + 1; q <= now; q++) {
		struct dio_range *r = &dt->dt_ended[q % DIO_ENDED];

		if (atomic_load(&r->dr_seq) != q || dio_overlaps(
		    atomic_load(&r->dr_start), atomic_load(&r->dr_end), start,
		    end))
			return true;
	}
	return false;
}
