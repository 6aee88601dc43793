/*
 * tools/fake-sora/fake_sora.c: a fake Sora provider for tests and
 * benchmarks: options, listening sockets, routing, shared replies.
 *
 *   fake-sora [--listen 127.0.0.1] [--port 0] [--port-file PATH]
 *             [--steps 10] [--step-ms 200] [--api-key KEY]
 *             [--video-bytes 4096] [--verbose] [--help]
 *
 * Port 0 picks a free port.  Once it accepts connections it writes the
 * port to --port-file (a temporary file renamed into place) and prints
 * "fake-sora listening on http://ADDR:PORT" on stdout.  SIGTERM or SIGINT
 * end it with status 0.  With --api-key every /v1 request must carry
 * "Authorization: Bearer KEY", or gets 401 invalid_api_key.
 *
 * Endpoints
 *   POST /v1/chat/completions   chat-completions SSE (chat.c); stream:false
 *                               answers one chat.completion
 *   POST /v1/videos             OpenAI Videos create, JSON or multipart
 *   GET  /v1/videos             list; GET|DELETE /v1/videos/{id}
 *   GET  /v1/videos/{id}/content[?variant=video|thumbnail|spritesheet]
 *   GET  /media/<id>.mp4        the video a chat stream linked
 *   GET  /stats[?prompt=P]      {"chat_requests","video_creates",
 *                               "video_polls","content_downloads",
 *                               "decoy_downloads","faults_injected"}
 *                               for prompt P, or totals (and more)
 *   POST /reset                 forget prompts, counters and videos
 *   GET  /redirect?to=URL       302 to URL (loopback URLs only)
 *   GET  /healthz               200 "ok"
 *
 * Decoys.  A second listener on 127.0.0.1 (another port) and a third on
 * 127.0.0.2 (the same port) serve any *.mp4 as a valid video and count
 * it as a decoy download: the url-loopback and url-redirect-private
 * faults point there, so a worker that fails to refuse those URLs gets a
 * video, and the test sees decoy_downloads > 0.
 *
 * Faults.  A prompt holds markers [fault:NAME], [fault:NAME*K] (only the
 * first K requests of that kind carrying this prompt), [fault:NAME@KIND]
 * (aim it at chat, create, poll or content) and [style:N] (chat shape
 * 0-6, chat.c).  An "X-Fake-Fault: NAME" header faults its own request.
 * The default target is in brackets (chat flow / videos flow):
 *
 *   429                  429 rate_limit_exceeded, Retry-After: 1 [chat/create]
 *   429-ms               429 with only retry-after-ms: 1500 [chat/create]
 *   429-date             429, Retry-After an HTTP-date 2 s ahead [chat/create]
 *   429-far              429, Retry-After an HTTP-date in 2090 [chat/create]
 *   429-big              429, Retry-After: 300 [chat/create]
 *   429-none             429 without a retry hint [chat/create]
 *   quota                429 insufficient_quota, not retryable [chat/create]
 *   500                  500 server_error JSON [chat/create]
 *   502-html             502 with an HTML body [chat/create]
 *   503                  503 overloaded JSON [chat/create]
 *   400                  400 invalid_request_error, seconds type [chat/create]
 *   401                  401 invalid_api_key [chat/create]
 *   404                  404 JSON, an expired download [content/content]
 *   stall                chat: two progress chunks then silence until the
 *                        client leaves; videos: progress freezes [chat/create]
 *   keepalive-only       chat: only ": keep-alive" comments; videos: stays
 *                        queued [chat/create]
 *   never-ends           chat: progress forever, no URL; videos: stays at 99
 *                        [chat/create]
 *   drop                 chat: three progress chunks, then the connection is
 *                        cut; download: cut halfway [chat/content]
 *   drop-after-url       chat: the URL chunk, then cut, no [DONE] [chat/-]
 *   malformed            chat: BOM, truncated JSON, raw text line, CRLF, two
 *                        events without a blank line, then a valid URL [chat/-]
 *   policy               chat: in-stream sentinel_block error + [DONE];
 *                        videos: failed, moderation_blocked [chat/create]
 *   no-url               chat: stop + [DONE] without a URL; videos: /content
 *                        404 [chat/content]
 *   fail-late            chat: progress to 99 then an in-stream timeout
 *                        error; videos: failed after 99 [chat/create]
 *   url-file             chat: URL file:///etc/passwd [chat/-]
 *   url-loopback         chat: URL on the 127.0.0.1 decoy port [chat/-]
 *   url-redirect-private chat: URL /redirect to the 127.0.0.2 decoy;
 *                        videos: /content 302 there [chat/content]
 *   huge-body            chat: 50 MiB of padded chunks then the URL;
 *                        download: 50 MiB with Content-Length [chat/content]
 *   chunked-20m          chat: 20 MiB of chunks; download: 20 MiB chunked,
 *                        no Content-Length [chat/content]
 *   huge-line            chat: a 4 MiB data: line without newline [chat/-]
 *   slow                 download trickles in --steps pieces [content/content]
 *   content-redirect     download: 302 to /media/<id>.mp4 [content/content]
 *
 * "Forever" faults (stall, keepalive-only, never-ends) give up after an
 * hour.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fake_sora.h"

#define BACKLOG 4096

/* One listening daemon: the main one or a decoy. */
struct listener {
	struct fs_server *srv;
	struct MHD_Daemon *d;
	bool decoy;
};

/* ---- small shared helpers ------------------------------------------------ */

void
fs_log(struct fs_server *srv, const char *fmt, ...)
{
	va_list ap;

	if (!srv->verbose)
		return;
	va_start(ap, fmt);
	fputs("fake-sora: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

uint64_t
fs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
fs_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];
	size_t i, need = (n + 1) / 2;

	if (need > sizeof(b))
		need = sizeof(b);
	if (getrandom(b, need, 0) != (ssize_t)need) {
		/* never short for 64 bytes; a weak fallback anyway */
		uint64_t x = fs_now_ms() ^ (uint64_t)getpid();

		for (i = 0; i < need; i++) {
			x = x * 6364136223846793005ULL + 1;
			b[i] = (unsigned char)(x >> 33);
		}
	}
	for (i = 0; i < n && i / 2 < need; i++)
		out[i] = hex[i % 2 ? b[i / 2] & 15 : b[i / 2] >> 4];
	out[i] = '\0';
}

void
fs_base_url(struct fs_req *rq, char *out, size_t size)
{
	const char *host = MHD_lookup_connection_value(rq->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	struct fs_server *srv = rq->srv;
	const char *addr = srv->listen;

	if (host != NULL && host[0] != '\0' && strlen(host) < 200 &&
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-:[]") == strlen(host)) {
		snprintf(out, size, "http://%s", host);
		return;
	}
	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	if (strchr(addr, ':') != NULL)
		snprintf(out, size, "http://[%s]:%u", addr, srv->port);
	else
		snprintf(out, size, "http://%s:%u", addr, srv->port);
}

bool
fs_authorized(struct fs_req *rq)
{
	const char *h;

	if (rq->srv->api_key == NULL)
		return true;
	h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	return h != NULL && strncasecmp(h, "Bearer ", 7) == 0 &&
	    strcmp(h + 7, rq->srv->api_key) == 0;
}

/* ---- replies ------------------------------------------------------------- */

enum MHD_Result
fs_reply(struct fs_req *rq, unsigned status, const char *type,
    const char *body, size_t len, const char *const *headers)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char reqid[40];
	size_t i;

	resp = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	strcpy(reqid, "req_");
	fs_random_hex(reqid + 4, 32);
	if (type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    type);
	MHD_add_response_header(resp, "x-request-id", reqid);
	for (i = 0; headers != NULL && headers[i] != NULL; i += 2)
		if (headers[i + 1] != NULL)
			MHD_add_response_header(resp, headers[i],
			    headers[i + 1]);
	ret = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
fs_reply_json(struct fs_req *rq, unsigned status, json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	enum MHD_Result ret;

	json_decref(obj);
	if (s == NULL)
		return fs_reply_text(rq, 500, "text/plain", "out of memory\n");
	ret = fs_reply(rq, status, "application/json", s, strlen(s), NULL);
	free(s);
	return ret;
}

enum MHD_Result
fs_reply_text(struct fs_req *rq, unsigned status, const char *type,
    const char *text)
{
	return fs_reply(rq, status, type, text, strlen(text), NULL);
}

enum MHD_Result
fs_reply_error(struct fs_req *rq, unsigned status, const char *message,
    const char *type, const char *param, const char *code)
{
	return fs_reply_json(rq, status, json_pack("{s:{s:s,s:s,s:o,s:o}}",
	    "error", "message", message, "type", type,
	    "param", param ? json_string(param) : json_null(),
	    "code", code ? json_string(code) : json_null()));
}

enum MHD_Result
fs_reply_redirect(struct fs_req *rq, const char *location)
{
	const char *hdrs[] = { MHD_HTTP_HEADER_LOCATION, location, NULL };

	return fs_reply(rq, 302, "text/plain", "", 0, hdrs);
}

/* ---- prompts and counters ------------------------------------------------ */

static struct fs_prompt *
prompt_lookup(struct fs_server *srv, const char *text)
{
	struct fs_prompt *p;

	if (srv->prompt_buckets == 0)
		return NULL;
	for (p = srv->prompts[fs_hash(text) % srv->prompt_buckets]; p != NULL;
	    p = p->next)
		if (strcmp(p->text, text) == 0)
			return p;
	return NULL;
}

static int
prompts_grow(struct fs_server *srv)
{
	size_t n = srv->prompt_buckets ? 2 * srv->prompt_buckets : 1024, i;
	struct fs_prompt **t = calloc(n, sizeof(*t)), *p;

	if (t == NULL)
		return -1;
	for (i = 0; i < srv->prompt_buckets; i++) {
		while ((p = srv->prompts[i]) != NULL) {
			size_t b = (size_t)(fs_hash(p->text) % n);

			srv->prompts[i] = p->next;
			p->next = t[b];
			t[b] = p;
		}
	}
	free(srv->prompts);
	srv->prompts = t;
	srv->prompt_buckets = n;
	return 0;
}

struct fs_prompt *
fs_prompt_get(struct fs_server *srv, const char *text)
{
	struct fs_prompt *p = prompt_lookup(srv, text);
	size_t b;

	if (p != NULL)
		return p;
	if (srv->nprompts >= srv->prompt_buckets && prompts_grow(srv) < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->text = strdup(text)) == NULL) {
		free(p);
		return NULL;
	}
	b = (size_t)(fs_hash(text) % srv->prompt_buckets);
	p->next = srv->prompts[b];
	srv->prompts[b] = p;
	srv->nprompts++;
	return p;
}

static void
prompts_clear(struct fs_server *srv)
{
	size_t i;
	struct fs_prompt *p;

	for (i = 0; i < srv->prompt_buckets; i++) {
		while ((p = srv->prompts[i]) != NULL) {
			srv->prompts[i] = p->next;
			free(p->text);
			free(p);
		}
	}
	srv->nprompts = 0;
}

void
fs_count(struct fs_server *srv, const char *prompt, enum fs_kind kind)
{
	struct fs_prompt *p;

	pthread_mutex_lock(&srv->mu);
	srv->total[kind]++;
	if (prompt != NULL && (p = fs_prompt_get(srv, prompt)) != NULL)
		p->count[kind]++;
	pthread_mutex_unlock(&srv->mu);
}

/* ---- small endpoints ----------------------------------------------------- */

static enum MHD_Result
stats(struct fs_req *rq)
{
	struct fs_server *srv = rq->srv;
	const char *prompt = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "prompt");
	const uint64_t *c, zero[FS_KIND_MAX] = { 0 };
	uint64_t decoy, faults;
	struct fs_prompt *p = NULL;
	json_t *o;

	pthread_mutex_lock(&srv->mu);
	if (prompt != NULL) {
		p = prompt_lookup(srv, prompt);
		c = p ? p->count : zero;
		decoy = p ? p->decoy : 0;
		faults = p ? p->faults : 0;
	} else {
		c = srv->total;
		decoy = srv->total_decoy;
		faults = srv->total_faults;
	}
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
	    "chat_requests", (json_int_t)c[FS_CHAT],
	    "video_creates", (json_int_t)c[FS_CREATE],
	    "video_polls", (json_int_t)c[FS_POLL],
	    "content_downloads", (json_int_t)c[FS_CONTENT],
	    "decoy_downloads", (json_int_t)decoy,
	    "faults_injected", (json_int_t)faults);
	if (o != NULL && prompt == NULL) {
		json_object_set_new(o, "prompts",
		    json_integer((json_int_t)srv->nprompts));
		json_object_set_new(o, "videos",
		    json_integer((json_int_t)srv->nvideos));
		json_object_set_new(o, "active_streams",
		    json_integer(atomic_load(&srv->streams)));
		json_object_set_new(o, "streams_total", json_integer(
		    (json_int_t)atomic_load(&srv->streams_total)));
	}
	pthread_mutex_unlock(&srv->mu);
	return fs_reply_json(rq, 200, o);
}

static enum MHD_Result
reset(struct fs_req *rq)
{
	struct fs_server *srv = rq->srv;

	pthread_mutex_lock(&srv->mu);
	prompts_clear(srv);
	fs_videos_clear(srv);
	memset(srv->total, 0, sizeof(srv->total));
	srv->total_decoy = srv->total_faults = 0;
	pthread_mutex_unlock(&srv->mu);
	return fs_reply_json(rq, 200, json_pack("{s:b}", "reset", 1));
}

/* loopback_url: http://127.x.x.x, http://localhost or http://[::1]. */
static bool
loopback_url(const char *u)
{
	if (strncmp(u, "http://", 7) != 0)
		return false;
	u += 7;
	if (strncmp(u, "127.", 4) == 0)
		return true;
	if (strncmp(u, "[::1]", 5) == 0)
		return true;
	return strncmp(u, "localhost", 9) == 0 &&
	    (u[9] == ':' || u[9] == '/' || u[9] == '\0');
}

static enum MHD_Result
redirect(struct fs_req *rq)
{
	const char *to = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "to");

	/* Only loopback: this server must never send a client elsewhere. */
	if (to == NULL || !loopback_url(to))
		return fs_reply_error(rq, 400, "to must be a loopback http URL",
		    "invalid_request_error", "to", NULL);
	return fs_reply_redirect(rq, to);
}

/* ---- forms --------------------------------------------------------------- */

static enum MHD_Result
form_field(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *type, const char *enc,
    const char *data, uint64_t off, size_t size)
{
	struct fs_req *rq = cls;
	const char *old;
	char *s;
	size_t n;

	(void)kind, (void)type, (void)enc, (void)off;
	if (filename != NULL) {		/* input_reference: noted, not kept */
		json_object_set_new(rq->form, key, json_string(filename));
		return MHD_YES;
	}
	old = json_string_value(json_object_get(rq->form, key));
	n = old ? strlen(old) : 0;
	s = malloc(n + size + 1);
	if (s == NULL)
		return MHD_NO;
	memcpy(s, old ? old : "", n);
	memcpy(s + n, data, size);
	s[n + size] = '\0';
	json_object_set_new(rq->form, key, json_string(s));
	free(s);
	return MHD_YES;
}

/* parse_form fills rq->form from a multipart or urlencoded body. */
static void
parse_form(struct fs_req *rq)
{
	const char *ct = MHD_lookup_connection_value(rq->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	struct MHD_PostProcessor *pp;

	size_t skip = rq->body ? strspn(rq->body, " \t\r\n") : 0;

	if (ct == NULL || (strncasecmp(ct, "multipart/form-data", 19) != 0 &&
	    strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0))
		return;
	/* curl -d sends JSON labelled as a form: take it as JSON. */
	if (rq->body != NULL && rq->body[skip] == '{' &&
	    strncasecmp(ct, "multipart/", 10) != 0)
		return;
	rq->form = json_object();
	if (rq->form == NULL)
		return;
	pp = MHD_create_post_processor(rq->conn, 65536, form_field, rq);
	if (pp == NULL)
		return;
	MHD_post_process(pp, rq->body ? rq->body : "", rq->len);
	MHD_destroy_post_processor(pp);
}

/* ---- routing ------------------------------------------------------------- */

static bool
is_get(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static enum MHD_Result
route(struct fs_req *rq, const char *url, const char *method)
{
	struct fs_server *srv = rq->srv;
	size_t n = strlen(url);

	fs_log(srv, "%s%s %s", rq->decoy ? "decoy " : "", method, url);
	if (rq->decoy) {
		if (is_get(method) && n > 4 && strcmp(url + n - 4, ".mp4") == 0)
			return fs_media_handle(rq, url);
		return fs_reply_error(rq, 404, "No such file.",
		    "invalid_request_error", NULL, "not_found");
	}
	if (rq->too_big)
		return fs_reply_error(rq, 413, "Request body too large.",
		    "invalid_request_error", NULL, NULL);
	if (strcmp(method, "POST") == 0)
		parse_form(rq);

	if (strcmp(url, "/v1/chat/completions") == 0) {
		if (strcmp(method, "POST") == 0)
			return fs_chat_handle(rq);
	} else if (strncmp(url, "/v1/videos", 10) == 0 &&
	    (url[10] == '\0' || url[10] == '/')) {
		return fs_videos_handle(rq, method, url);
	} else if (strncmp(url, "/media/", 7) == 0) {
		if (is_get(method))
			return fs_media_handle(rq, url);
	} else if (strcmp(url, "/stats") == 0) {
		if (is_get(method))
			return stats(rq);
	} else if (strcmp(url, "/reset") == 0) {
		if (strcmp(method, "POST") == 0)
			return reset(rq);
	} else if (strcmp(url, "/redirect") == 0) {
		if (is_get(method))
			return redirect(rq);
	} else if (strcmp(url, "/healthz") == 0) {
		return fs_reply_text(rq, 200, "text/plain", "ok\n");
	} else {
		return fs_reply_error(rq, 404, "Unknown request URL.",
		    "invalid_request_error", NULL, "unknown_url");
	}
	return fs_reply_error(rq, 405, "Method not allowed.",
	    "invalid_request_error", NULL, NULL);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct listener *l = cls;
	struct fs_req *rq = *con_cls;

	(void)version;
	if (rq == NULL) {	/* the headers are in; the body may follow */
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		rq->srv = l->srv;
		rq->conn = conn;
		rq->decoy = l->decoy;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size != 0) {
		size_t n = *upload_size;
		char *b;

		*upload_size = 0;
		if (rq->too_big || rq->len + n > FS_BODY_MAX) {
			rq->too_big = true;
			return MHD_YES;
		}
		b = realloc(rq->body, rq->len + n + 1);
		if (b == NULL)
			return MHD_NO;
		memcpy(b + rq->len, upload, n);
		rq->len += n;
		b[rq->len] = '\0';
		rq->body = b;
		return MHD_YES;
	}
	return route(rq, url, method);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct fs_req *rq = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (rq == NULL)
		return;
	free(rq->body);
	json_decref(rq->form);
	free(rq);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct fs_server *srv = cls;

	if (!srv->verbose)
		return;
	fputs("fake-sora: mhd: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* ---- start and stop ------------------------------------------------------ */

/* listen_on binds addr:port and listens; -1 (errno set) on failure. */
static int
listen_on(const char *addr, unsigned port, unsigned *bound, bool *v6)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1, e;

	memset(&ss, 0, sizeof(ss));
	if (strcmp(addr, "localhost") == 0)
		addr = "127.0.0.1";
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
		*v6 = false;
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
		*v6 = true;
	} else {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*bound = ntohs(ss.ss_family == AF_INET ? a4->sin_port :
	    a6->sin6_port);
	return fd;
}

/* start_daemon runs MHD on a listening socket (taken in every case). */
static int
start_daemon(struct listener *l, int fd, bool v6, unsigned limit)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	if (v6)
		flags |= MHD_USE_IPv6;
	l->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, 0u,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l->srv,
	    MHD_OPTION_END);
	if (l->d == NULL) {
		close(fd);
		return -1;
	}
	return 0;
}

static int
write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* raise_nofile lifts the soft descriptor limit to the hard one and
 * returns how many connections a daemon may hold. */
static unsigned
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1000;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000)
		return 1000000;
	return rl.rlim_cur > 128 ? (unsigned)rl.rlim_cur - 64 : 64;
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: fake-sora [options]\n"
	    "A fake Sora provider: chat-completions SSE and the OpenAI Videos "
	    "API,\nwith faults injected per request.\n\n"
	    "  --listen ADDR       address to listen on (127.0.0.1)\n"
	    "  --port N            port, 0 picks a free one (0)\n"
	    "  --port-file PATH    write the port there once listening\n"
	    "  --steps N           progress events per generation (10)\n"
	    "  --step-ms MS        milliseconds between them (200)\n"
	    "  --api-key KEY       require Authorization: Bearer KEY on /v1\n"
	    "  --video-bytes N     size of a generated video (4096)\n"
	    "  --verbose           log requests and faults to stderr\n"
	    "  --help              this text\n\n"
	    "Endpoints: POST /v1/chat/completions; POST|GET /v1/videos; GET|"
	    "DELETE\n/v1/videos/{id}; GET /v1/videos/{id}/content[?variant=]; "
	    "GET /media/<id>.mp4;\nGET /stats[?prompt=P]; POST /reset; GET "
	    "/redirect?to=URL; GET /healthz.\n\n"
	    "Faults: put [fault:NAME] in the prompt, [fault:NAME*K] for only "
	    "the first K\nrequests of that prompt, [fault:NAME@KIND] to aim "
	    "it at chat, create, poll or\ncontent; or send the header "
	    "X-Fake-Fault: NAME.  [style:N] (0-%d) picks the\nchat stream "
	    "shape.  Faults:\n", FS_STYLES - 1);
	fs_fault_help(out);
}

static bool
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "steps", required_argument, NULL, 's' },
		{ "step-ms", required_argument, NULL, 'm' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "video-bytes", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fs_server srv = {
		.listen = "127.0.0.1",
		.steps = 10,
		.step_ms = 200,
		.video_bytes = 4096,
	};
	struct listener main_l = { .srv = &srv };
	struct listener decoy1 = { .srv = &srv, .decoy = true };
	struct listener decoy2 = { .srv = &srv, .decoy = true };
	const char *port_file = NULL;
	unsigned long port = 0, v;
	unsigned limit, dport;
	sigset_t sigs;
	bool v6, dv6;
	int c, fd, sig;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			snprintf(srv.listen, sizeof(srv.listen), "%s", optarg);
			break;
		case 'p':
			if (!parse_uint(optarg, 65535, &port))
				goto bad;
			break;
		case 'f':
			port_file = optarg;
			break;
		case 's':
			if (!parse_uint(optarg, 1000000, &v) || v == 0)
				goto bad;
			srv.steps = (unsigned)v;
			break;
		case 'm':
			if (!parse_uint(optarg, 3600000, &v))
				goto bad;
			srv.step_ms = (unsigned)v;
			break;
		case 'k':
			srv.api_key = optarg;
			break;
		case 'b':
			if (!parse_uint(optarg, 1ul << 30, &v) || v == 0)
				goto bad;
			srv.video_bytes = v;
			break;
		case 'v':
			srv.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc)
		goto bad;

	/* Signals go to sigwait() below, never to MHD's threads. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	pthread_mutex_init(&srv.mu, NULL);
	limit = raise_nofile();

	fd = listen_on(srv.listen, (unsigned)port, &srv.port, &v6);
	if (fd < 0) {
		fprintf(stderr, "fake-sora: cannot listen on %s:%lu: %s\n",
		    srv.listen, port, strerror(errno));
		return 1;
	}
	if (fs_timer_start(&srv) < 0 ||
	    start_daemon(&main_l, fd, v6, limit) < 0) {
		fprintf(stderr, "fake-sora: cannot start the HTTP daemon\n");
		return 1;
	}
	/* Decoys are best effort: without them the URL faults still work,
	 * a worker that follows them just meets a closed port. */
	fd = listen_on("127.0.0.1", 0, &dport, &dv6);
	if (fd >= 0 && start_daemon(&decoy1, fd, false, 1000) == 0)
		srv.decoy_port = dport;
	fd = listen_on("127.0.0.2", srv.port, &dport, &dv6);
	if (fd >= 0 && start_daemon(&decoy2, fd, false, 1000) == 0)
		srv.decoy2 = true;

	if (port_file != NULL && write_port_file(port_file, srv.port) < 0) {
		fprintf(stderr, "fake-sora: cannot write %s: %s\n", port_file,
		    strerror(errno));
		sig = 1;
		goto stop;
	}
	printf("fake-sora listening on http://%s%s%s:%u\n", v6 ? "[" : "",
	    strcmp(srv.listen, "localhost") ? srv.listen : "127.0.0.1",
	    v6 ? "]" : "", srv.port);
	fflush(stdout);
	fs_log(&srv, "decoys: 127.0.0.1:%u, 127.0.0.2:%u%s", srv.decoy_port,
	    srv.port, srv.decoy2 ? "" : " (not available)");

	while (sigwait(&sigs, &sig) != 0)
		;
	fs_log(&srv, "signal %d: stopping", sig);
	sig = 0;
stop:
	/* Streams refuse to sleep from now on; then wake the sleepers, as
	 * MHD must not be stopped with suspended connections. */
	atomic_store(&srv.stopping, true);
	fs_timer_stop(&srv);
	if (decoy2.d != NULL)
		MHD_stop_daemon(decoy2.d);
	if (decoy1.d != NULL)
		MHD_stop_daemon(decoy1.d);
	MHD_stop_daemon(main_l.d);
	prompts_clear(&srv);
	fs_videos_clear(&srv);
	free(srv.prompts);
	free(srv.videos);
	fs_timer_free(&srv);
	return sig;
bad:
	fprintf(stderr, "fake-sora: bad arguments (try --help)\n");
	return 2;
}
