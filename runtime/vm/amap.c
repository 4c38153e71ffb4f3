/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * amap.c: amaps and anons (see amap.h for the slot encoding and locks).
 *
 * A word on references.  An amap is referenced by map entries through
 * arefs.  References made by clipping (amap_splitref) cover disjoint slot
 * ranges, so dropping one may free the anons of its own range at once.
 * References made for sharing (amap_ref(overlap=true), i.e. needs-copy)
 * cover the same slots as another; from then on a partial drop cannot know
 * whether a slot is still referenced, and slots are freed only with the
 * last reference.  This is UVM without the per-page reference array
 * (UVM_AMAP_PPREF off): a shared amap that is partly unmapped keeps the
 * unmapped pages' anons until its last reference goes.
 *
 * Frees never happen under am_lock: anons to release are gathered first
 * and unref'd after the lock is dropped (UVM's dead queue).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "amap.h"
#include "kmem.h"
#include "log.h"

static struct kmem_pool anon_pool;
static void (*swap_release)(uint64_t slot);
static void (*anon_unstage)(struct anon *);
static struct kmem_pool amap_pool;
/*
 * Slot and reference-bit arrays of small amaps come from pools of power-of-
 * two sizes (8 bytes to 2 KiB: regions up to 1 MiB); larger ones are
 * kmem_alloc()ed, page granular.  A page per array made a 64 KiB region's
 * metadata 8 KiB (512 bytes per page).
 */
#define ARR_MIN_SHIFT	3
#define ARR_MAX_SHIFT	11
static struct kmem_pool arr_pools[ARR_MAX_SHIFT - ARR_MIN_SHIFT + 1];
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static int pools_users;

#define SLOT_ANON(s)	((struct anon *)(s))
#define GATHER_BATCH	256

static inline bool
slot_resident(uintptr_t s)
{
	return s == SLOT_RESIDENT ||
	    (SLOT_IS_ANON(s) && (SLOT_ANON(s)->an_flags & ANON_RESIDENT));
}

void
amap_init_pools(void)
{
	pthread_mutex_lock(&pools_lock);
	if (pools_users++ == 0) {
		kmem_pool_init(&anon_pool, "anon", sizeof(struct anon));
		kmem_pool_init(&amap_pool, "amap", sizeof(struct amap));
		for (int i = 0; i <= ARR_MAX_SHIFT - ARR_MIN_SHIFT; i++)
			kmem_pool_init(&arr_pools[i], "amap array",
			    (size_t)1 << (ARR_MIN_SHIFT + i));
	}
	pthread_mutex_unlock(&pools_lock);
}

void
amap_fini_pools(void)
{
	pthread_mutex_lock(&pools_lock);
	if (pools_users > 0 && --pools_users == 0) {
		kmem_pool_destroy(&anon_pool);
		kmem_pool_destroy(&amap_pool);
		for (int i = 0; i <= ARR_MAX_SHIFT - ARR_MIN_SHIFT; i++)
			kmem_pool_destroy(&arr_pools[i]);
	}
	pthread_mutex_unlock(&pools_lock);
}

static size_t
slots_bytes(int nslot)
{
	return (size_t)nslot * sizeof(uintptr_t);
}

static size_t
refbits_bytes(int nslot)
{
	size_t units = ((size_t)nslot + AMAP_UNIT - 1) / AMAP_UNIT;

	return (units + 63) / 64 * sizeof(atomic_ulong);
}

/* arr_pool: the pool of an array of len bytes, or NULL: kmem_alloc */
static struct kmem_pool *
arr_pool(size_t len)
{
	int shift = ARR_MIN_SHIFT;

	while (((size_t)1 << shift) < len)
		shift++;
	return shift <= ARR_MAX_SHIFT ? &arr_pools[shift - ARR_MIN_SHIFT] :
	    NULL;
}

/* arr_alloc / arr_free: a zeroed array of len bytes */
static void *
arr_alloc(size_t len)
{
	struct kmem_pool *kp = arr_pool(len);

	return kp != NULL ? kmem_pool_get(kp) : kmem_alloc(len);
}

static void
arr_free(void *p, size_t len)
{
	struct kmem_pool *kp = arr_pool(len);

	if (p != NULL && kp != NULL)
		kmem_pool_put(kp, p);
	else
		kmem_free(p, len);
}

void
amap_set_unstage(void (*unstage)(struct anon *))
{
	anon_unstage = unstage;
}

void
amap_set_swap_release(void (*release)(uint64_t slot))
{
	swap_release = release;
}

/* units_used: slots [a, b) are filling: their units may be in use */
static void
units_used(struct amap *am, int a, int b)
{
	for (int u = a / AMAP_UNIT; u <= (b - 1) / AMAP_UNIT; u++)
		atomic_fetch_or_explicit(&am->am_usedbits[u / 64],
		    1UL << (u % 64), memory_order_relaxed);
}

int
amap_create(int nslot, struct amap **out)
{
	struct amap *am;

	if (nslot <= 0)
		return -EINVAL;
	if ((am = kmem_pool_get(&amap_pool)) == NULL)
		return -ENOMEM;
	am->am_slots = arr_alloc(slots_bytes(nslot));
	am->am_refbits = arr_alloc(refbits_bytes(nslot));
	am->am_usedbits = arr_alloc(refbits_bytes(nslot));
	if (am->am_slots == NULL || am->am_refbits == NULL ||
	    am->am_usedbits == NULL) {
		arr_free(am->am_slots, slots_bytes(nslot));
		arr_free(am->am_refbits, refbits_bytes(nslot));
		arr_free(am->am_usedbits, refbits_bytes(nslot));
		kmem_pool_put(&amap_pool, am);
		return -ENOMEM;
	}
	vm_mutex_init(&am->am_lock);
	atomic_init(&am->am_ref, 1);
	am->am_flags = 0;
	am->am_nslot = nslot;
	am->am_nused = 0;
	*out = am;
	return 0;
}

static struct anon *
anon_alloc(void)
{
	struct anon *an = kmem_pool_get(&anon_pool);

	if (an != NULL)
		atomic_init(&an->an_ref, 1);
	return an;
}

void
anon_unref(struct anon *an)
{
	if (atomic_fetch_sub_explicit(&an->an_ref, 1,
	    memory_order_acq_rel) != 1)
		return;
	/* last reference: nothing else can see it */
	if (an->an_swslot != 0 && swap_release != NULL)
		swap_release(an->an_swslot);
	kmem_pool_put(&anon_pool, an);
}

/*
 * amap_empty_slots: empty [slot, slot + n), putting the anons to release
 * into dead[] as long as it has room.
 * => amap locked.  Returns the number of slots handled (<= n): the caller
 *    drops the lock, releases dead[] and comes back for the rest.
 */
static int
amap_empty_slots(struct amap *am, int slot, int n, struct anon **dead,
    int *ndead, int *nresp)
{
	int i;

	VM_ASSERT_LOCKED(&am->am_lock);
	*ndead = 0;
	for (i = 0; i < n; i++) {
		uintptr_t s = am->am_slots[slot + i];

		VM_ASSERT(s != SLOT_BUSY);
		if (s == SLOT_EMPTY)
			continue;
		if (SLOT_IS_ANON(s)) {
			if (*ndead == GATHER_BATCH)
				break;
			if ((SLOT_ANON(s)->an_flags & ANON_STAGED) &&
			    anon_unstage != NULL)
				anon_unstage(SLOT_ANON(s));
			dead[(*ndead)++] = SLOT_ANON(s);
		}
		if (slot_resident(s))
			(*nresp)++;
		am->am_slots[slot + i] = SLOT_EMPTY;
		am->am_nused--;
	}
	return i;
}

int
amap_free_range(struct amap *am, int slot, int n)
{
	struct anon *dead[GATHER_BATCH];
	int ndead, done, nres = 0;

	VM_ASSERT(slot >= 0 && n >= 0 && slot + n <= am->am_nslot);
	vm_mutex_lock(&am->am_lock);
	while (n > 0) {
		done = amap_empty_slots(am, slot, n, dead, &ndead, &nres);
		slot += done;
		n -= done;
		if (ndead == 0)
			continue;
		vm_mutex_unlock(&am->am_lock);
		for (int i = 0; i < ndead; i++)
			anon_unref(dead[i]);
		vm_mutex_lock(&am->am_lock);
	}
	vm_mutex_unlock(&am->am_lock);
	return nres;
}

int
amap_resident(struct amap *am, int slot, int n)
{
	int nres = 0;

	VM_ASSERT(slot >= 0 && n >= 0 && slot + n <= am->am_nslot);
	vm_mutex_lock(&am->am_lock);
	for (int i = slot; i < slot + n; i++)
		nres += slot_resident(am->am_slots[i]);
	vm_mutex_unlock(&am->am_lock);
	return nres;
}

static void
amap_free(struct amap *am)
{
	VM_ASSERT(atomic_load(&am->am_ref) == 0);
	amap_free_range(am, 0, am->am_nslot);
	arr_free(am->am_slots, slots_bytes(am->am_nslot));
	arr_free(am->am_refbits, refbits_bytes(am->am_nslot));
	arr_free(am->am_usedbits, refbits_bytes(am->am_nslot));
	vm_mutex_destroy(&am->am_lock);
	kmem_pool_put(&amap_pool, am);
}

void
amap_ref(struct amap *am, bool overlap)
{
	atomic_fetch_add(&am->am_ref, 1);
	if (overlap) {
		vm_mutex_lock(&am->am_lock);
		am->am_flags |= AMAP_OVERLAP;
		vm_mutex_unlock(&am->am_lock);
	}
}

void
amap_hold(struct amap *am)
{
	atomic_fetch_add_explicit(&am->am_ref, 1, memory_order_relaxed);
}

void
amap_drop(struct amap *am)
{
	if (atomic_fetch_sub_explicit(&am->am_ref, 1,
	    memory_order_acq_rel) == 1)
		amap_free(am);
}

void
anon_hold(struct anon *an)
{
	atomic_fetch_add_explicit(&an->an_ref, 1, memory_order_relaxed);
}

void
amap_unref(struct amap *am, int slot, int n)
{
	bool overlap;

	if (atomic_fetch_sub_explicit(&am->am_ref, 1,
	    memory_order_acq_rel) == 1) {
		amap_free(am);
		return;
	}
	vm_mutex_lock(&am->am_lock);
	overlap = (am->am_flags & AMAP_OVERLAP) != 0;
	vm_mutex_unlock(&am->am_lock);
	if (!overlap)
		amap_free_range(am, slot, n);
}

void
amap_splitref(struct vm_aref *orig, struct vm_aref *split, int offset)
{
	VM_ASSERT(orig->ar_amap != NULL && offset > 0);
	VM_ASSERT(orig->ar_pageoff + offset < orig->ar_amap->am_nslot);
	split->ar_amap = orig->ar_amap;
	split->ar_pageoff = orig->ar_pageoff + offset;
	atomic_fetch_add(&orig->ar_amap->am_ref, 1);
}

void
amap_mergeref(struct amap *am)
{
	int old = atomic_fetch_sub(&am->am_ref, 1);

	VM_ASSERT(old > 1);
	(void)old;
}

/*
 * amap_share_slot: the value the copy's slot gets for source slot value s,
 * making an implicit anon real in the source first.
 * => source amap locked.  Returns SLOT_BUSY (never a valid result) when
 *    out of memory.
 */
static uintptr_t
amap_share_slot(struct amap *src, int slot)
{
	uintptr_t s = src->am_slots[slot];
	struct anon *an;

	VM_ASSERT(s != SLOT_BUSY);
	if (s == SLOT_EMPTY)
		return SLOT_EMPTY;
	if (s == SLOT_RESIDENT) {
		if ((an = anon_alloc()) == NULL)
			return SLOT_BUSY;
		an->an_flags = ANON_RESIDENT;
		src->am_slots[slot] = (uintptr_t)an;
	} else {
		an = SLOT_ANON(s);
	}
	atomic_fetch_add(&an->an_ref, 1);
	return (uintptr_t)an;
}

int
amap_copy(struct vm_aref *aref, int n)
{
	struct amap *src = aref->ar_amap, *dst;
	int error, i;

	if (src == NULL)
		return amap_create(n, &aref->ar_amap);
	if (atomic_load(&src->am_ref) == 1)
		return 0;
	if ((error = amap_create(n, &dst)) != 0)
		return error;
	vm_mutex_lock(&src->am_lock);
	for (i = 0; i < n; i++) {
		uintptr_t s = amap_share_slot(src, aref->ar_pageoff + i);

		if (s == SLOT_BUSY)
			break;
		dst->am_slots[i] = s;
		if (s != SLOT_EMPTY) {
			dst->am_nused++;
			units_used(dst, i, i + 1);
		}
	}
	vm_mutex_unlock(&src->am_lock);
	if (i < n) {
		/* undo: shared anons lose the copy's reference again */
		atomic_store(&dst->am_ref, 0);
		amap_free(dst);
		return -ENOMEM;
	}
	aref->ar_amap = dst;
	aref->ar_pageoff = 0;
	amap_unref(src, 0, 0);
	return 0;
}

int
amap_cow(struct amap *am, int slot, struct anon **newp, struct anon **oldp)
{
	uintptr_t s;
	struct anon *an;

	VM_ASSERT_LOCKED(&am->am_lock);
	s = am->am_slots[slot];
	if (!SLOT_IS_ANON(s) || atomic_load(&SLOT_ANON(s)->an_ref) < 2)
		return -EINVAL;
	if ((an = anon_alloc()) == NULL)
		return -ENOMEM;
	am->am_slots[slot] = (uintptr_t)an;
	*newp = an;
	*oldp = SLOT_ANON(s);	/* the slot's reference moves to the caller */
	return 0;
}

int
amap_claim(struct amap *am, int slot, int lo, int hi, int *startp,
    uintptr_t *statep)
{
	int a, b;

	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(lo <= slot && slot < hi && hi <= am->am_nslot);
	*statep = am->am_slots[slot];
	if (*statep != SLOT_EMPTY)
		return 0;
	for (a = slot; a > lo && am->am_slots[a - 1] == SLOT_EMPTY; a--)
		;
	for (b = slot + 1; b < hi && am->am_slots[b] == SLOT_EMPTY; b++)
		;
	for (int i = a; i < b; i++)
		am->am_slots[i] = SLOT_BUSY;
	am->am_nused += b - a;
	units_used(am, a, b);
	*startp = a;
	return b - a;
}

/* a swapped-out anon nobody owns, holding swap slot `want` (0: any) */
static bool
slot_swapped(struct amap *am, int slot, uint64_t want)
{
	uintptr_t s = am->am_slots[slot];
	struct anon *an;

	if (!SLOT_IS_ANON(s))
		return false;
	an = SLOT_ANON(s);
	return (an->an_flags & (ANON_SWAPPED | ANON_RESIDENT | ANON_TRANSIT |
	    ANON_POISON)) == ANON_SWAPPED &&
	    (want == 0 || an->an_swslot == want);
}

int
amap_claim_swapped(struct amap *am, int slot, int lo, int hi, int *startp,
    uint64_t *swslotp, struct anon **held)
{
	uint64_t base;
	int a, b;

	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(lo <= slot && slot < hi && hi <= am->am_nslot);
	if (!slot_swapped(am, slot, 0))
		return 0;
	base = SLOT_ANON(am->am_slots[slot])->an_swslot;
	/* backwards no further than swap slot 1 (0 would match any) */
	for (a = slot; a > lo && base > (uint64_t)(slot - a + 1) &&
	    slot_swapped(am, a - 1, base - (uint64_t)(slot - a + 1)); a--)
		;
	for (b = slot + 1; b < hi && slot_swapped(am, b,
	    base + (uint64_t)(b - slot)); b++)
		;
	for (int i = a; i < b; i++) {
		held[i - a] = SLOT_ANON(am->am_slots[i]);
		held[i - a]->an_flags |= ANON_TRANSIT;
		atomic_fetch_add_explicit(&held[i - a]->an_ref, 1,
		    memory_order_relaxed);
	}
	*startp = a;
	*swslotp = base - (uint64_t)(slot - a);
	return b - a;
}

int
amap_claim_object(struct amap *am, int slot, int lo, int hi, int *startp,
    struct anon **held)
{
	struct anon *an;
	int a, b, n;

	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(lo <= slot && slot < hi && hi <= am->am_nslot);
	if (am->am_slots[slot] != SLOT_EMPTY)
		return 0;
	for (a = slot; a > lo && am->am_slots[a - 1] == SLOT_EMPTY; a--)
		;
	for (b = slot + 1; b < hi && am->am_slots[b] == SLOT_EMPTY; b++)
		;
	for (n = 0; n < b - a; n++) {
		if ((an = anon_alloc()) == NULL) {
			/* out of memory: nothing claimed */
			while (n > 0)
				kmem_pool_put(&anon_pool, held[--n]);
			return 0;
		}
		an->an_flags = ANON_OBJ | ANON_TRANSIT;
		an->an_swslot = 0;
		atomic_store_explicit(&an->an_ref, 2, memory_order_relaxed);
		held[n] = an;
	}
	for (int i = a; i < b; i++)
		am->am_slots[i] = (uintptr_t)held[i - a];
	am->am_nused += b - a;
	units_used(am, a, b);
	*startp = a;
	return b - a;
}

struct anon *
amap_unset(struct amap *am, int slot)
{
	uintptr_t s;

	VM_ASSERT_LOCKED(&am->am_lock);
	s = am->am_slots[slot];
	VM_ASSERT(SLOT_IS_ANON(s));
	am->am_slots[slot] = SLOT_EMPTY;
	am->am_nused--;
	return SLOT_ANON(s);
}

void
amap_settle(struct amap *am, int slot, int n, uintptr_t to)
{
	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(to == SLOT_RESIDENT || to == SLOT_EMPTY);
	for (int i = slot; i < slot + n; i++) {
		VM_ASSERT(am->am_slots[i] == SLOT_BUSY);
		am->am_slots[i] = to;
	}
	if (to == SLOT_EMPTY)
		am->am_nused -= n;
}

struct anon *
amap_anon_at(struct amap *am, int slot)
{
	uintptr_t s;

	VM_ASSERT_LOCKED(&am->am_lock);
	s = am->am_slots[slot];
	return SLOT_IS_ANON(s) ? SLOT_ANON(s) : NULL;
}

struct anon *
amap_anon(struct amap *am, int slot)
{
	uintptr_t s;
	struct anon *an;

	VM_ASSERT_LOCKED(&am->am_lock);
	s = am->am_slots[slot];
	if (SLOT_IS_ANON(s))
		return (SLOT_ANON(s)->an_flags & ANON_RESIDENT) ?
		    SLOT_ANON(s) : NULL;
	if (s != SLOT_RESIDENT || (an = anon_alloc()) == NULL)
		return NULL;
	an->an_flags = ANON_RESIDENT;
	am->am_slots[slot] = (uintptr_t)an;
	return an;
}

void
amap_set_dirty(struct amap *am, int slot, uint64_t *slotp)
{
	uintptr_t s;
	struct anon *an;

	VM_ASSERT_LOCKED(&am->am_lock);
	*slotp = 0;
	s = am->am_slots[slot];
	if (!SLOT_IS_ANON(s))
		return;
	an = SLOT_ANON(s);
	VM_ASSERT(an->an_flags & ANON_RESIDENT);
	if (atomic_load(&an->an_ref) == 1) {
		/* private: back to an implicit anon, its copy released */
		*slotp = an->an_swslot;
		am->am_slots[slot] = SLOT_RESIDENT;
		an->an_swslot = 0;
		kmem_pool_put(&anon_pool, an);
		return;
	}
	/* shared (copy-on-write): the writer's fault path copies it first */
}

bool
amap_ref_unit(struct amap *am, int slot)
{
	int u = slot / AMAP_UNIT;

	if (atomic_load_explicit(&am->am_refbits[u / 64],
	    memory_order_relaxed) & (1UL << (u % 64)))
		return true;
	atomic_fetch_or_explicit(&am->am_refbits[u / 64], 1UL << (u % 64),
	    memory_order_relaxed);
	return false;
}

int
amap_next_used_unit(struct amap *am, int slot, int end)
{
	int u = slot / AMAP_UNIT, uend = (end + AMAP_UNIT - 1) / AMAP_UNIT;
	unsigned long w;

	while (u < uend) {
		w = atomic_load_explicit(&am->am_usedbits[u / 64],
		    memory_order_relaxed) >> (u % 64);
		if (w != 0) {
			u += __builtin_ctzl(w);
			break;
		}
		u = (u / 64 + 1) * 64;
	}
	if (u >= uend)
		return end;
	return MAX(slot, u * AMAP_UNIT);
}

void
amap_unit_forget(struct amap *am, int slot)
{
	int u = slot / AMAP_UNIT;
	int lo = u * AMAP_UNIT, hi = MIN(lo + AMAP_UNIT, am->am_nslot);

	VM_ASSERT_LOCKED(&am->am_lock);
	for (int i = lo; i < hi; i++)
		if (am->am_slots[i] != SLOT_EMPTY)
			return;
	atomic_fetch_and_explicit(&am->am_usedbits[u / 64],
	    ~(1UL << (u % 64)), memory_order_relaxed);
}

bool
amap_test_clear_unit(struct amap *am, int slot)
{
	int u = slot / AMAP_UNIT;
	unsigned long bit = 1UL << (u % 64);

	return (atomic_fetch_and_explicit(&am->am_refbits[u / 64], ~bit,
	    memory_order_relaxed) & bit) != 0;
}

int
amap_sample(struct amap *am, int lo, int hi, int stride)
{
	int n = 0;

	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(lo >= 0 && hi <= am->am_nslot && stride > 0);
	for (int i = lo; i < hi; i += stride)
		n += am->am_slots[i] != SLOT_EMPTY;
	return n;
}

uintptr_t
amap_slot(struct amap *am, int slot)
{
	VM_ASSERT_LOCKED(&am->am_lock);
	VM_ASSERT(slot >= 0 && slot < am->am_nslot);
	return am->am_slots[slot];
}

int
amap_check(struct amap *am)
{
	int used = 0, bad = -1;

	vm_mutex_lock(&am->am_lock);
	for (int i = 0; i < am->am_nslot; i++) {
		uintptr_t s = am->am_slots[i];

		if (s == SLOT_EMPTY)
			continue;
		used++;
		if (s == 2 || (SLOT_IS_ANON(s) && ((s & 15) != 0 ||
		    atomic_load(&SLOT_ANON(s)->an_ref) < 1)))
			bad = bad < 0 ? i : bad;
	}
	vm_mutex_unlock(&am->am_lock);
	if (bad >= 0) {
		upvm_log(LOG_ERR, "amap_check: slot %d holds a bad value", bad);
		return -EINVAL;
	}
	if (used != am->am_nused) {
		upvm_log(LOG_ERR, "amap_check: am_nused %d but %d slots used",
		    am->am_nused, used);
		return -EINVAL;
	}
	if (atomic_load(&am->am_ref) < 1) {
		upvm_log(LOG_ERR, "amap_check: am_ref %d < 1",
		    atomic_load(&am->am_ref));
		return -EINVAL;
	}
	return 0;
}

static size_t
pool_count(struct kmem_pool *kp)
{
	size_t n;

	vm_mutex_lock(&kp->kp_lock);
	n = kp->kp_nalloc;
	vm_mutex_unlock(&kp->kp_lock);
	return n;
}

size_t
amap_anon_count(void)
{
	return pool_count(&anon_pool);
}

size_t
amap_count(void)
{
	return pool_count(&amap_pool);
}

size_t
amap_meta_bytes(void)
{
	size_t n = kmem_pool_bytes(&anon_pool) + kmem_pool_bytes(&amap_pool);

	for (int i = 0; i <= ARR_MAX_SHIFT - ARR_MIN_SHIFT; i++)
		n += kmem_pool_bytes(&arr_pools[i]);
	return n;
}
