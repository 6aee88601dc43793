/*
 * common/validate.c: checks for input at the edge.  protobuf-c accepts
 * invalid UTF-8 and cuts strings at an embedded NUL, and PostgreSQL accepts
 * non-canonical UUIDs, so every string field passes through here first.
 */
#include <string.h>

#include "vg.h"

/* A hex digit's value, or -1. */
static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_hex(char c)
{
	return hex_value(c) >= 0;
}

/*
 * Not constant-time, unlike sodium_hex2bin: it reads what the database
 * sent (every timestamp of a page) and our own ids, never a secret, and
 * took 2% of the server's CPU under ListVideos as sodium's.
 */
bool
vg_hex_decode(unsigned char *out, size_t n, const char *hex)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(hex[2 * i]), lo;

		if (hi < 0 || (lo = hex_value(hex[2 * i + 1])) < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

bool
vg_uuid_valid(const char *s)
{
	if (s == NULL)
		return false;
	for (int i = 0; i < VG_UUID_STRLEN; i++) {
		bool dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (s[i] == '\0')
			return false;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return s[VG_UUID_STRLEN] == '\0';
}

bool
vg_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned int cp;
		size_t n;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;	/* continuation, overlong lead, > U+10FFFF */
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

size_t
vg_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static bool
label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/*
 * A pragmatic address check: local@domain, ASCII, the local part from the
 * RFC 5322 atom set (dots not first, last or doubled), the domain at least
 * two labels of letters, digits and inner hyphens.  At most 255 bytes.
 */
bool
vg_email_valid(const char *s)
{
	static const char atext[] = "abcdefghijklmnopqrstuvwxyz0123456789"
	    "!#$%&'*+/=?^_`{|}~-.";
	const char *at, *p, *label;
	size_t len = strlen(s), local;
	int labels = 0;

	if (len < 3 || len > 255)
		return false;
	at = strchr(s, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	local = (size_t)(at - s);
	if (local == 0 || local > 64 || s[0] == '.' || at[-1] == '.')
		return false;
	for (p = s; p < at; p++)
		if (strchr(atext, *p) == NULL || (p[0] == '.' && p[1] == '.'))
			return false;
	label = at + 1;
	for (p = label;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t l = (size_t)(p - label);

			if (l == 0 || l > 63 || label[0] == '-' || p[-1] == '-')
				return false;
			labels++;
			if (*p == '\0')
				break;
			label = p + 1;
		} else if (!label_char(*p)) {
			return false;
		}
	}
	return labels >= 2;
}

/*
 * http(s)://host[:port][/path...]: printable ASCII, no spaces, no
 * userinfo, a host of letters, digits, dots and hyphens (or [v6]).
 */
bool
vg_http_url_valid(const char *s)
{
	const char *p, *host;
	size_t n;

	if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '"' || *p == '<' || *p == '>' || *p == '\\')
			return false;
	n = strcspn(host, "/?#");
	if (n == 0 || memchr(host, '@', n) != NULL)
		return false;
	if (host[0] == '[')
		return memchr(host, ']', n) != NULL;
	for (p = host; p < host + n && *p != ':'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return false;
	if (p == host)
		return false;
	if (p < host + n) {	/* port */
		const char *q = p + 1;
		long port = 0;

		if (q == host + n || host + n - q > 5)
			return false;
		for (; q < host + n; q++) {
			if (*q < '0' || *q > '9')
				return false;
			port = port * 10 + (*q - '0');
		}
		if (port < 1 || port > 65535)
			return false;
	}
	return true;
}
