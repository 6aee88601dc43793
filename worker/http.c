/*
 * worker/http.c: every libcurl transfer of the worker and its hygiene
 * (DESIGN §7): allowed protocols, no redirects on API calls, checked
 * https-only redirects on downloads with the connected address checked on
 * every hop, our own status checks, capped bodies, idle timeouts and the
 * job's deadline.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "wrk_int.h"

int
wrk_http_init(struct wrk *w)
{
	const char *url = w->cfg->provider_url;
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rv = 0;

	snprintf(w->protocols, sizeof(w->protocols), "https");
	if (url == NULL || url[0] == '\0')
		return 0;
	u = curl_url();
	if (u == NULL)
		return VG_ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
	    CURLUE_OK || (strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0)) {
		rv = VG_EINVAL;
		goto out;
	}
	snprintf(w->prov_scheme, sizeof(w->prov_scheme), "%s", scheme);
	snprintf(w->prov_host, sizeof(w->prov_host), "%s", host);
	w->prov_port = strtol(port, NULL, 10);
	if (strcmp(scheme, "http") == 0)
		snprintf(w->protocols, sizeof(w->protocols), "https,http");
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rv;
}

int
wrk_url_join(const char *base, const char *path, char *out, size_t n)
{
	size_t len = strlen(base);
	int w;

	while (len > 0 && base[len - 1] == '/')
		len--;
	/* A base URL that already ends in /v1 takes paths without it. */
	if (len >= 3 && strncmp(base + len - 3, "/v1", 3) == 0 &&
	    strncmp(path, "/v1/", 4) == 0)
		path += 3;
	w = snprintf(out, n, "%.*s%s", (int)len, base, path);
	return w < 0 || (size_t)w >= n ? VG_ETOOBIG : 0;
}

/* ---- the address check ---------------------------------------------------- */

/* blocked_ip: loopback, private, link-local, unspecified, multicast,
 * CGNAT, and the IPv6 forms of those (mapped, compatible, ULA). */
static bool
blocked_v4(const unsigned char *a)
{
	return a[0] == 0 || a[0] == 10 || a[0] == 127 ||
	    (a[0] == 169 && a[1] == 254) || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) || (a[0] == 100 && (a[1] & 0xc0) == 64) ||
	    a[0] >= 224;
}

static bool
blocked_ip(const char *ip)
{
	unsigned char a[16];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	static const unsigned char zero[12] = { 0 };

	if (inet_pton(AF_INET, ip, a) == 1)
		return blocked_v4(a);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return true;	/* cannot tell: refuse */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, zero, 12) == 0)
		return blocked_v4(a + 12);	/* also ::1 and :: */
	if ((a[0] & 0xfe) == 0xfc || a[0] == 0xff ||
	    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
	    (a[0] == 0x20 && a[1] == 0x02) ||	/* 6to4 embeds any v4 */
	    (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b))
		return true;
	return false;
}

/* The provider's own host:port, as configured, is the one exception. */
static bool
is_provider(struct wrk *w, const char *url, const char *ip, int port)
{
	CURLU *u;
	char *host = NULL;
	bool same = false;

	if (w->prov_host[0] == '\0' || port != w->prov_port)
		return false;
	u = curl_url();
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		same = strcasecmp(host, w->prov_host) == 0;
	curl_free(host);
	curl_url_cleanup(u);
	/* A literal address must be the one we connected to. */
	if (same && isdigit((unsigned char)w->prov_host[0]))
		same = strcmp(ip, w->prov_host) == 0;
	return same;
}

static int
on_prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct wrk_xfer *x = arg;
	struct wrk *w = x->job->w;
	char *url = NULL;
	bool http;

	(void)local_ip;
	(void)local_port;
	curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
	if (url == NULL)
		url = "";
	http = strncasecmp(url, "http:", 5) == 0;
	if ((http || blocked_ip(ip)) && !is_provider(w, url, ip, port)) {
		x->refused = true;
		vg_warn("refused address job=%s ip=%s port=%d", x->job->row.id,
		    ip, port);
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/* ---- callbacks ----------------------------------------------------------------- */

static void
copy_value(char *dst, size_t n, const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct wrk_xfer *x = arg;
	size_t len = size * nmemb, nl;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (a redirect hop, or a 100): start over. */
		const char *sp = memchr(data, ' ', len);

		x->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
		x->content_type[0] = x->retry_after[0] = '\0';
		x->retry_after_ms[0] = '\0';
		return len;
	}
	nl = strlen("content-type:");
	if (len > nl && strncasecmp(data, "content-type:", nl) == 0)
		copy_value(x->content_type, sizeof(x->content_type), data + nl,
		    len - nl);
	nl = strlen("retry-after:");
	if (len > nl && strncasecmp(data, "retry-after:", nl) == 0)
		copy_value(x->retry_after, sizeof(x->retry_after), data + nl,
		    len - nl);
	nl = strlen("retry-after-ms:");
	if (len > nl && strncasecmp(data, "retry-after-ms:", nl) == 0)
		copy_value(x->retry_after_ms, sizeof(x->retry_after_ms),
		    data + nl, len - nl);
	return len;
}

int
wrk_xfer_body_add(struct wrk_xfer *x, const char *data, size_t len)
{
	size_t cap;
	char *b;

	if (x->len + len > x->body_max) {
		x->too_big = true;
		return VG_ETOOBIG;
	}
	if (x->len + len + 1 > x->cap) {
		cap = x->cap ? x->cap : 4096;
		while (cap < x->len + len + 1)
			cap *= 2;
		if (cap > x->body_max + 1)
			cap = x->body_max + 1;
		b = realloc(x->body, cap);
		if (b == NULL)
			return VG_ENOMEM;
		x->body = b;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, len);
	x->len += len;
	x->body[x->len] = '\0';
	return 0;
}

static bool
video_type(const char *ct)
{
	return strncasecmp(ct, "video/", 6) == 0 ||
	    strncasecmp(ct, "application/octet-stream", 24) == 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct wrk_xfer *x = arg;
	size_t len = size * nmemb;
	bool ok = x->status >= 200 && x->status < 300;

	x->total += len;
	if (ok && x->kind == WRK_XFER_STREAM && x->on_data != NULL) {
		if (x->total > WRK_STREAM_MAX) {
			x->too_big = true;
			return 0;
		}
		x->cb_err = x->on_data(x, data, len);
		return x->cb_err < 0 ? 0 : len;
	}
	if (ok && x->kind == WRK_XFER_MEDIA) {
		if (!video_type(x->content_type)) {
			x->bad_type = true;
			return 0;
		}
		if ((int64_t)x->total > x->media_max) {
			x->too_big = true;
			return 0;
		}
		for (size_t i = 0; x->nhead < sizeof(x->head) && i < len; i++)
			x->head[x->nhead++] = (unsigned char)data[i];
		if (x->file == NULL || fwrite(data, 1, len, x->file) != len)
			return 0;
		return len;
	}
	return wrk_xfer_body_add(x, data, len) < 0 ? 0 : len;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct wrk_xfer *x = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (vg_now_ms() >= x->job->deadline_ms) {
		x->deadline = true;
		return 1;
	}
	return 0;
}

/* ---- transfers --------------------------------------------------------------- */

struct wrk_xfer *
wrk_xfer_new(struct wrk_job *job, enum wrk_xfer_kind kind, const char *url,
    bool auth, const char *post)
{
	const struct wrk_config *cfg = job->w->cfg;
	struct wrk_xfer *x = calloc(1, sizeof(*x));
	struct curl_slist *h;
	char *bearer = NULL;
	CURL *e;

	if (x == NULL)
		return NULL;
	x->job = job;
	x->kind = kind;
	x->body_max = WRK_API_BODY_MAX;
	x->media_max = cfg->media_max;
	e = x->easy = curl_easy_init();
	if (e == NULL)
		goto fail;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, job->w->protocols);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)WRK_CONNECT_TIMEOUT_S);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vgen-worker/1");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
	if (kind == WRK_XFER_MEDIA) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
		    job->w->protocols);
		/* Slow downloads are fine; a silent one is not. */
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, cfg->idle_timeout_s);
	} else {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	}
	if (kind == WRK_XFER_STREAM) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, cfg->idle_timeout_s);
	} else if (kind == WRK_XFER_API) {
		curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)WRK_API_TIMEOUT_S);
	}
	h = curl_slist_append(NULL, kind == WRK_XFER_STREAM ?
	    "Accept: text/event-stream" : kind == WRK_XFER_MEDIA ?
	    "Accept: application/binary" : "Accept: application/json");
	if (h == NULL)
		goto fail;
	x->headers = h;
	if (auth && cfg->api_key != NULL && cfg->api_key[0] != '\0') {
		if (asprintf(&bearer, "Authorization: Bearer %s",
		    cfg->api_key) < 0)
			goto fail;
		h = curl_slist_append(x->headers, bearer);
		free(bearer);
		if (h == NULL)
			goto fail;
		x->headers = h;
	}
	if (post != NULL) {
		h = curl_slist_append(x->headers,
		    "Content-Type: application/json");
		if (h == NULL || (x->req_body = strdup(post)) == NULL)
			goto fail;
		x->headers = h;
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	return x;
fail:
	wrk_xfer_free(x);
	return NULL;
}

int
wrk_xfer_start(struct wrk_xfer *x)
{
	if (curl_multi_add_handle(x->job->w->multi, x->easy) != CURLM_OK)
		return VG_EINTERNAL;
	x->job->xfer = x;
	return 0;
}

void
wrk_xfer_free(struct wrk_xfer *x)
{
	if (x == NULL)
		return;
	if (x->job != NULL && x->job->xfer == x)
		x->job->xfer = NULL;
	if (x->easy != NULL) {
		if (x->job != NULL)
			curl_multi_remove_handle(x->job->w->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	if (x->file != NULL)
		fclose(x->file);
	if (x->part[0] != '\0')
		unlink(x->part);
	free(x->req_body);
	free(x->body);
	free(x);
}

bool
wrk_xfer_ok(const struct wrk_xfer *x, int rc)
{
	return rc == CURLE_OK && x->status >= 200 && x->status < 300;
}
