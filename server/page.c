/*
 * server/page.c: opaque page tokens for keyset pagination.  A token
 * carries the position (created_at, id) of the last row of a page, bound
 * by a MAC to the user and the listing it came from, so a token altered by
 * the client, taken from another user or another listing, or plain garbage
 * is refused with INVALID_ARGUMENT before any SQL runs.
 *
 *	base64url( version | kind | created_us (8, big-endian) | id (16) | mac (16) )
 */
#include <string.h>

#include <sodium.h>

#include "srv_int.h"

#define PAGE_VERSION 1
#define PAGE_RAW (1 + 1 + 8 + 16 + SRV_MAC_BYTES)

static bool
uuid_to_bytes(const char *s, unsigned char out[16])
{
	size_t n = 0;

	if (!vg_uuid_valid(s))
		return false;
	for (const char *p = s; *p != '\0' && n < 16; p++) {
		if (*p == '-')
			continue;
		if (!vg_hex_decode(&out[n], 1, p))
			return false;
		n++;
		p++;
	}
	return n == 16;
}

static void
uuid_from_bytes(const unsigned char b[16], char out[VG_UUID_STRLEN + 1])
{
	char hex[33];

	sodium_bin2hex(hex, sizeof(hex), b, 16);
	snprintf(out, VG_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex,
	    hex + 8, hex + 12, hex + 16, hex + 20);
}

/* The MAC covers the user and everything before the tag. */
static void
page_mac(const struct srv_auth *a, const char *user_id,
    const unsigned char *raw, unsigned char out[SRV_MAC_BYTES])
{
	unsigned char msg[VG_UUID_STRLEN + PAGE_RAW];

	memcpy(msg, user_id, VG_UUID_STRLEN);
	memcpy(msg + VG_UUID_STRLEN, raw, PAGE_RAW - SRV_MAC_BYTES);
	srv_auth_mac(a, msg, sizeof(msg) - SRV_MAC_BYTES, out);
}

char *
srv_page_token(struct srv_call *call, int kind, int64_t created_us,
    const char *id)
{
	unsigned char raw[PAGE_RAW];
	uint64_t us = (uint64_t)created_us;
	size_t n = sodium_base64_ENCODED_LEN(PAGE_RAW,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *tok;

	raw[0] = PAGE_VERSION;
	raw[1] = (unsigned char)kind;
	for (int i = 0; i < 8; i++)
		raw[2 + i] = (unsigned char)(us >> (56 - 8 * i));
	if (!uuid_to_bytes(id, raw + 10))
		return NULL;
	page_mac(call->srv->auth, call->user_id, raw, raw + 26);
	if ((tok = srv_call_alloc(call, n)) == NULL)
		return NULL;
	sodium_bin2base64(tok, n, raw, PAGE_RAW,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return tok;
}

int
srv_page_parse(struct srv_call *call, int kind, const char *token,
    int64_t *created_us, char id[VG_UUID_STRLEN + 1])
{
	unsigned char raw[PAGE_RAW], mac[SRV_MAC_BYTES];
	size_t len = 0;
	uint64_t us = 0;

	if (strlen(token) > 2 * PAGE_RAW ||
	    sodium_base642bin(raw, sizeof(raw), token, strlen(token), NULL,
	    &len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    len != PAGE_RAW || raw[0] != PAGE_VERSION || raw[1] != kind)
		return VG_EINVAL;
	page_mac(call->srv->auth, call->user_id, raw, mac);
	if (sodium_memcmp(mac, raw + 26, SRV_MAC_BYTES) != 0)
		return VG_EINVAL;
	for (int i = 0; i < 8; i++)
		us = (us << 8) | raw[2 + i];
	*created_us = (int64_t)us;
	uuid_from_bytes(raw + 10, id);
	return 0;
}
