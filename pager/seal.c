/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * seal.c: AES-256-GCM page sealing over libcrypto (see seal.h).
 *
 * A thread's EVP context keeps the key schedule of the last seal it used
 * (sl_serial tells seals apart, even one created at a freed one's
 * address), so a page costs one IV set-up, not a key expansion.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include "kmem.h"
#include "log.h"
#include "seal.h"
#include "vm.h"

struct seal {
	uint8_t		 sl_key[32];	/* [I] */
	uint8_t		 sl_id[SEAL_ID];/* [I] */
	uint64_t	 sl_serial;	/* [I] unique per seal_create */
};

static atomic_uint_fast64_t seal_serials = 1;

/* a thread's cipher contexts and which seal's key they hold */
static _Thread_local EVP_CIPHER_CTX *seal_tl_ctx[2];	/* enc, dec */
static _Thread_local uint64_t seal_tl_serial[2];
static pthread_key_t seal_tl_key;	/* frees them at thread exit */
static pthread_once_t seal_tl_once = PTHREAD_ONCE_INIT;

static void
seal_tl_free(void *arg)
{
	for (int i = 0; i < 2; i++) {
		EVP_CIPHER_CTX_free(seal_tl_ctx[i]);
		seal_tl_ctx[i] = NULL;
		seal_tl_serial[i] = 0;
	}
}

static void
seal_tl_init(void)
{
	(void)pthread_key_create(&seal_tl_key, seal_tl_free);
}

static int
seal_random(void *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = getrandom(buf, len, 0)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf = (char *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

int
seal_create(struct seal **out)
{
	struct seal *sl;
	int error;

	if ((sl = kmem_alloc(sizeof(*sl))) == NULL)
		return -ENOMEM;
	/* the key never reaches a disk: not swapped, not in a core dump */
	(void)mlock(sl, sizeof(*sl));
	(void)madvise(sl, PAGE_SIZE, MADV_DONTDUMP);
	if ((error = seal_random(sl->sl_key, sizeof(sl->sl_key))) != 0 ||
	    (error = seal_random(sl->sl_id, sizeof(sl->sl_id))) != 0) {
		upvm_log(LOG_ERR, "seal: no random key (getrandom: %s); "
		    "pages cannot be encrypted", strerror(-error));
		kmem_free(sl, sizeof(*sl));
		return error;
	}
	sl->sl_serial = atomic_fetch_add(&seal_serials, 1);
	*out = sl;
	return 0;
}

void
seal_destroy(struct seal *sl)
{
	if (sl == NULL)
		return;
	explicit_bzero(sl->sl_key, sizeof(sl->sl_key));
	kmem_free(sl, sizeof(*sl));
}

const uint8_t *
seal_id(const struct seal *sl)
{
	return sl->sl_id;
}

/* seal_ctx: this thread's context for direction dec, keyed for sl */
static EVP_CIPHER_CTX *
seal_ctx(const struct seal *sl, int dec)
{
	EVP_CIPHER_CTX *ctx = seal_tl_ctx[dec];
	int ok;

	if (ctx == NULL) {
		if ((ctx = seal_tl_ctx[dec] = EVP_CIPHER_CTX_new()) == NULL)
			return NULL;
		(void)pthread_once(&seal_tl_once, seal_tl_init);
		(void)pthread_setspecific(seal_tl_key, ctx);
	}
	if (seal_tl_serial[dec] == sl->sl_serial)
		return ctx;
	ok = dec ? EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, sl->sl_key,
	    NULL) : EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL,
	    sl->sl_key, NULL);
	if (!ok)
		return NULL;
	seal_tl_serial[dec] = sl->sl_serial;
	return ctx;
}

/* seal_ad: the associated data and the 12-byte IV of (slot, gen) */
static void
seal_ad(const struct seal *sl, uint64_t slot, uint64_t gen, uint8_t ad[32],
    uint8_t iv[12])
{
	memcpy(ad, sl->sl_id, SEAL_ID);
	memcpy(ad + 16, &slot, 8);
	memcpy(ad + 24, &gen, 8);
	memset(iv, 0, 12);
	memcpy(iv, &gen, 8);
}

int
seal_page(const struct seal *sl, uint64_t slot, uint64_t gen,
    const void *in, void *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = seal_ctx(sl, 0);
	uint8_t ad[32], iv[12];
	int len;

	seal_ad(sl, slot, gen, ad, iv);
	if (ctx == NULL ||
	    !EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
	    !EVP_EncryptUpdate(ctx, NULL, &len, ad, sizeof(ad)) ||
	    !EVP_EncryptUpdate(ctx, out, &len, in, PAGE_SIZE) ||
	    !EVP_EncryptFinal_ex(ctx, (uint8_t *)out + len, &len) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag)) {
		seal_tl_serial[0] = 0;
		upvm_log(LOG_ERR, "seal: AES-256-GCM encryption failed in "
		    "libcrypto; the page stays in memory");
		return -EIO;
	}
	return 0;
}

int
seal_open(const struct seal *sl, uint64_t slot, uint64_t gen,
    const void *in, void *out, const uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = seal_ctx(sl, 1);
	uint8_t ad[32], iv[12], t[SEAL_TAG];
	int len;

	seal_ad(sl, slot, gen, ad, iv);
	memcpy(t, tag, SEAL_TAG);
	if (ctx == NULL ||
	    !EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
	    !EVP_DecryptUpdate(ctx, NULL, &len, ad, sizeof(ad)) ||
	    !EVP_DecryptUpdate(ctx, out, &len, in, PAGE_SIZE) ||
	    !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, t) ||
	    EVP_DecryptFinal_ex(ctx, (uint8_t *)out + len, &len) <= 0)
		return -EBADMSG;
	return 0;
}
