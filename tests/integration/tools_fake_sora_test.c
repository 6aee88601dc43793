/*
 * tests/integration/tools_fake_sora_test.c: tools/fake-sora as a child
 * process, spoken to over HTTP with libcurl.  The port file and banner,
 * a chat stream in every style ending with a video URL and [DONE], the
 * Videos create -> poll -> content cycle, /stats, a fault that fails
 * once and then lets the retry through, 429 retry hints, a dropped
 * stream, an in-stream policy error, the API key, and a clean SIGTERM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef VGEN_BIN_DIR
#error "VGEN_BIN_DIR must name the folder holding fake-sora"
#endif

#define FAKE_BIN VGEN_BIN_DIR "/fake-sora"
#define START_MS 10000
#define STOP_MS 10000
#define STEPS "4"
#define STEP_MS "50"

/* ---- fake-sora as a child ------------------------------------------------ */

struct fake {
	pid_t pid;			/* 0 once reaped */
	char dir[64];			/* "" once removed */
	char port_file[128];
	unsigned port;
	char base[64];			/* http://127.0.0.1:PORT */
	char banner[128];		/* its first stdout line */
};

/* Every fake started is here until stopped, for the atexit cleanup. */
static struct fake *live[4];

static void
cleanup_at_exit(void)
{
	size_t i;

	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		struct fake *f = live[i];

		if (f == NULL)
			continue;
		if (f->pid > 0) {
			kill(f->pid, SIGKILL);
			waitpid(f->pid, NULL, 0);
		}
		if (f->dir[0] != '\0') {
			unlink(f->port_file);
			rmdir(f->dir);
		}
	}
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* read_line reads the child's first stdout line, waiting up to ms. */
static void
read_line(int fd, char *out, size_t size, int ms)
{
	int64_t end = now_ms() + ms;
	size_t n = 0;

	out[0] = '\0';
	while (n + 1 < size && now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = read(fd, out + n, 1);
		if (r <= 0)
			break;
		if (out[n] == '\n')
			break;
		n++;
	}
	out[n] = '\0';
}

/* fake_start runs fake-sora on a free port; extra is a NULL-terminated
 * list of more arguments (may be NULL). */
static void
fake_start(struct fake *f, const char *const *extra)
{
	const char *argv[16] = { FAKE_BIN, "--port", "0", "--port-file", NULL,
	    "--steps", STEPS, "--step-ms", STEP_MS };
	size_t argc = 9, i;
	int out[2];
	int64_t end;
	FILE *pf;
	static bool registered;

	memset(f, 0, sizeof(*f));
	if (access(FAKE_BIN, X_OK) != 0) {
		fprintf(stderr, "no %s: build target fake-sora\n", FAKE_BIN);
		skip();
	}
	if (!registered) {
		atexit(cleanup_at_exit);
		registered = true;
	}
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == NULL) {
			live[i] = f;
			break;
		}
	strcpy(f->dir, "/tmp/fake-sora-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->port_file, sizeof(f->port_file), "%s/port", f->dir);
	argv[4] = f->port_file;
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], STDOUT_FILENO);
		execv(FAKE_BIN, (char *const *)argv);
		_exit(127);
	}
	close(out[1]);

	end = now_ms() + START_MS;
	while (now_ms() < end) {
		pf = fopen(f->port_file, "r");
		if (pf != NULL) {
			if (fscanf(pf, "%u", &f->port) != 1)
				f->port = 0;
			fclose(pf);
			if (f->port != 0)
				break;
		}
		usleep(20 * 1000);
	}
	read_line(out[0], f->banner, sizeof(f->banner), START_MS);
	close(out[0]);
	assert_true(f->port > 0 && f->port < 65536);
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", f->port);
}

/* fake_stop sends SIGTERM and returns the wait status (-1 if it had to
 * be killed), removing its folder. */
static int
fake_stop(struct fake *f)
{
	int64_t end = now_ms() + STOP_MS;
	int status = -1;
	size_t i;

	if (f->pid > 0) {
		kill(f->pid, SIGTERM);
		while (now_ms() < end) {
			pid_t r = waitpid(f->pid, &status, WNOHANG);

			if (r == f->pid)
				break;
			usleep(10 * 1000);
			status = -1;
		}
		if (status == -1) {
			kill(f->pid, SIGKILL);
			waitpid(f->pid, NULL, 0);
		}
		f->pid = 0;
	}
	if (f->dir[0] != '\0') {
		unlink(f->port_file);
		rmdir(f->dir);
		f->dir[0] = '\0';
	}
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == f)
			live[i] = NULL;
	return status;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct http {
	CURLcode rc;
	long code;
	char *body;		/* NUL-terminated */
	size_t len;
	char headers[4096];	/* lower-cased header block */
	size_t hlen;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http *h = arg;
	size_t n = size * nmemb;
	char *b = realloc(h->body, h->len + n + 1);

	if (b == NULL)
		return 0;
	memcpy(b + h->len, data, n);
	h->len += n;
	b[h->len] = '\0';
	h->body = b;
	return n;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http *h = arg;
	size_t n = size * nmemb, i;

	for (i = 0; i < n && h->hlen + 1 < sizeof(h->headers); i++)
		h->headers[h->hlen++] = (char)(data[i] >= 'A' && data[i] <= 'Z'
		    ? data[i] + 32 : data[i]);
	h->headers[h->hlen] = '\0';
	return n;
}

/*
 * http runs one request: POST when body is set (JSON unless form), else
 * GET; hdr is one extra header line or NULL.  Release with http_free.
 */
static void
http(struct http *h, const char *url, const char *body, const char *hdr)
{
	CURL *e = curl_easy_init();
	struct curl_slist *hs = NULL;

	memset(h, 0, sizeof(*h));
	assert_non_null(e);
	hs = curl_slist_append(hs, "Content-Type: application/json");
	if (hdr != NULL)
		hs = curl_slist_append(hs, hdr);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	if (body != NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	h->rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h->code);
	curl_easy_cleanup(e);
	curl_slist_free_all(hs);
	if (h->body == NULL) {
		h->body = calloc(1, 1);
		assert_non_null(h->body);
	}
}

static void
http_free(struct http *h)
{
	free(h->body);
	h->body = NULL;
}

/* header returns the value of a (lower-case) header, copied to out. */
static const char *
header(const struct http *h, const char *name, char *out, size_t size)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\n%s:", name);
	p = strstr(h->headers, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	while (*p == ' ')
		p++;
	e = strpbrk(p, "\r\n");
	snprintf(out, size, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	return out;
}

/* ---- chat helpers -------------------------------------------------------- */

static void
chat(struct fake *f, struct http *h, const char *prompt, bool stream,
    const char *hdr)
{
	char url[128];
	json_t *req;
	char *body;

	req = json_pack("{s:s,s:b,s:[{s:s,s:s}]}", "model",
	    "sora_video2-portrait", "stream", stream, "messages", "role",
	    "user", "content", prompt);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	snprintf(url, sizeof(url), "%s/v1/chat/completions", f->base);
	http(h, url, body, hdr);
	free(body);
}

/*
 * sse_text decodes an SSE body the way the worker must: events split on
 * blank lines, "data:" payloads, JSON chunks whose delta content and
 * reasoning are appended.  Returns the text (free it) and sets *done
 * when [DONE] was the last event.
 */
static char *
sse_text(const char *body, bool *done)
{
	size_t cap = strlen(body) + 1, len = 0;
	char *text = calloc(1, cap), *copy = strdup(body), *save = NULL, *ev;

	assert_non_null(text);
	assert_non_null(copy);
	*done = false;
	for (ev = strtok_r(copy, "\n", &save); ev != NULL;
	    ev = strtok_r(NULL, "\n", &save)) {
		json_t *o, *delta;
		const char *parts[2];
		size_t i;

		if (strncmp(ev, "data: ", 6) != 0)
			continue;
		ev += 6;
		*done = strcmp(ev, "[DONE]") == 0;
		o = json_loads(ev, 0, NULL);
		delta = json_object_get(json_array_get(json_object_get(o,
		    "choices"), 0), "delta");
		parts[0] = json_string_value(json_object_get(delta,
		    "reasoning_content"));
		parts[1] = json_string_value(json_object_get(delta, "content"));
		for (i = 0; i < 2; i++) {
			size_t n = parts[i] ? strlen(parts[i]) : 0;

			if (n > 0 && len + n < cap) {
				memcpy(text + len, parts[i], n);
				len += n;
			}
		}
		json_decref(o);
	}
	free(copy);
	return text;
}

/* video_url finds the media URL in accumulated text (into out). */
static bool
video_url(const char *text, const struct fake *f, char *out, size_t size)
{
	const char *p = strstr(text, f->base);
	size_t n;

	if (p == NULL)
		return false;
	n = strcspn(p, "'\")] \n<>`");
	snprintf(out, size, "%.*s", (int)n, p);
	return n > 4 && strcmp(out + strlen(out) - 4, ".mp4") == 0;
}

static void
assert_mp4(const struct http *h, size_t len)
{
	assert_int_equal(h->rc, CURLE_OK);
	assert_int_equal(h->code, 200);
	assert_int_equal(h->len, len);
	assert_memory_equal(h->body + 4, "ftyp", 4);
}

static json_t *
json_of(const struct http *h)
{
	json_t *o = json_loads(h->body, 0, NULL);

	assert_non_null(o);
	return o;
}

static long
stat_of(struct fake *f, const char *prompt, const char *field)
{
	struct http h;
	char url[512], *esc;
	json_t *o;
	long v;

	esc = curl_easy_escape(NULL, prompt, 0);
	snprintf(url, sizeof(url), "%s/stats?prompt=%s", f->base, esc);
	curl_free(esc);
	http(&h, url, NULL, NULL);
	assert_int_equal(h.code, 200);
	o = json_of(&h);
	assert_true(json_is_integer(json_object_get(o, field)));
	v = (long)json_integer_value(json_object_get(o, field));
	json_decref(o);
	http_free(&h);
	return v;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_port_file_and_banner_name_the_port(void **state)
{
	struct fake *f = *state;
	char want[128];

	struct dirent *d;
	DIR *dir;
	int files = 0;

	snprintf(want, sizeof(want), "fake-sora listening on %s", f->base);
	assert_string_equal(f->banner, want);
	/* written through a temporary file renamed into place */
	dir = opendir(f->dir);
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.')
			files++;
	closedir(dir);
	assert_int_equal(files, 1);
}

static void
test_chat_stream_in_every_style_ends_with_url_and_done(void **state)
{
	struct fake *f = *state;
	int style;

	for (style = 0; style < 7; style++) {
		struct http h, m;
		char prompt[64], url[256], ct[128];
		char *text;
		bool done;

		snprintf(prompt, sizeof(prompt), "a calico cat [style:%d]",
		    style);
		chat(f, &h, prompt, true, NULL);
		assert_int_equal(h.rc, CURLE_OK);
		assert_int_equal(h.code, 200);
		assert_non_null(header(&h, "content-type", ct, sizeof(ct)));
		assert_non_null(strstr(ct, "text/event-stream"));
		text = sse_text(h.body, &done);
		assert_true(done);
		if (!video_url(text, f, url, sizeof(url)))
			fail_msg("style %d: no URL in %s", style, text);
		assert_true(strstr(text, "rogress") != NULL ||
		    strstr(text, "进度") != NULL);
		free(text);
		http_free(&h);

		http(&m, url, NULL, NULL);
		assert_mp4(&m, 4096);
		http_free(&m);
	}
}

static void
test_chat_without_stream_answers_one_completion(void **state)
{
	struct fake *f = *state;
	struct http h;
	json_t *o;
	const char *content;
	char url[256];

	chat(f, &h, "a dog, no stream", false, NULL);
	assert_int_equal(h.code, 200);
	o = json_of(&h);
	assert_string_equal(json_string_value(json_object_get(o, "object")),
	    "chat.completion");
	content = json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(o, "choices"), 0), "message"),
	    "content"));
	assert_non_null(content);
	assert_true(video_url(content, f, url, sizeof(url)));
	json_decref(o);
	http_free(&h);
}

static void
test_videos_create_poll_content_cycle(void **state)
{
	struct fake *f = *state;
	struct http h;
	char url[256], id[80];
	json_t *o;
	int64_t end = now_ms() + 10000;
	int last = -1;
	bool completed = false;

	snprintf(url, sizeof(url), "%s/v1/videos", f->base);
	http(&h, url, "{\"model\":\"sora-2\",\"prompt\":\"a red kite\","
	    "\"seconds\":\"8\",\"size\":\"1280x720\"}", NULL);
	assert_int_equal(h.code, 200);
	o = json_of(&h);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(o,
	    "id")));
	assert_int_equal(strncmp(id, "video_", 6), 0);
	assert_int_equal(strlen(id), 6 + 48);
	assert_string_equal(json_string_value(json_object_get(o, "status")),
	    "queued");
	assert_string_equal(json_string_value(json_object_get(o, "seconds")),
	    "8");
	json_decref(o);
	http_free(&h);

	snprintf(url, sizeof(url), "%s/v1/videos/%s/content", f->base, id);
	http(&h, url, NULL, NULL);
	assert_int_equal(h.code, 404);	/* not ready yet */
	http_free(&h);

	snprintf(url, sizeof(url), "%s/v1/videos/%s", f->base, id);
	while (!completed && now_ms() < end) {
		int p;

		http(&h, url, NULL, NULL);
		assert_int_equal(h.code, 200);
		o = json_of(&h);
		p = (int)json_integer_value(json_object_get(o, "progress"));
		assert_true(p >= last);
		last = p;
		completed = strcmp(json_string_value(json_object_get(o,
		    "status")), "completed") == 0;
		if (completed) {
			assert_int_equal(p, 100);
			assert_true(json_is_integer(json_object_get(o,
			    "completed_at")));
			assert_true(json_is_integer(json_object_get(o,
			    "expires_at")));
		}
		json_decref(o);
		http_free(&h);
		usleep(30 * 1000);
	}
	assert_true(completed);

	snprintf(url, sizeof(url), "%s/v1/videos/%s/content", f->base, id);
	http(&h, url, NULL, NULL);
	assert_mp4(&h, 4096);
	http_free(&h);
}

static void
test_stats_count_requests_per_prompt(void **state)
{
	struct fake *f = *state;
	const char *prompt = "stats: one & only?";
	struct http h;
	char url[256], body[256], id[80];
	json_t *o;
	int i;

	assert_int_equal(stat_of(f, prompt, "video_creates"), 0);
	snprintf(url, sizeof(url), "%s/v1/videos", f->base);
	snprintf(body, sizeof(body), "{\"prompt\":\"%s\"}", prompt);
	http(&h, url, body, NULL);
	assert_int_equal(h.code, 200);
	o = json_of(&h);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(o,
	    "id")));
	json_decref(o);
	http_free(&h);
	snprintf(url, sizeof(url), "%s/v1/videos/%s", f->base, id);
	for (i = 0; i < 3; i++) {
		http(&h, url, NULL, NULL);
		http_free(&h);
	}
	chat(f, &h, prompt, true, NULL);
	http_free(&h);

	assert_int_equal(stat_of(f, prompt, "video_creates"), 1);
	assert_int_equal(stat_of(f, prompt, "video_polls"), 3);
	assert_int_equal(stat_of(f, prompt, "chat_requests"), 1);
	assert_int_equal(stat_of(f, prompt, "content_downloads"), 0);
	assert_int_equal(stat_of(f, "never sent", "video_creates"), 0);
}

static void
test_fault_500_once_fails_first_create_then_succeeds(void **state)
{
	struct fake *f = *state;
	const char *prompt = "retry me [fault:500*1]";
	struct http h;
	char url[256], body[256];
	json_t *o;

	snprintf(url, sizeof(url), "%s/v1/videos", f->base);
	snprintf(body, sizeof(body), "{\"prompt\":\"%s\"}", prompt);
	http(&h, url, body, NULL);
	assert_int_equal(h.code, 500);
	o = json_of(&h);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    o, "error"), "type")), "server_error");
	json_decref(o);
	http_free(&h);

	http(&h, url, body, NULL);
	assert_int_equal(h.code, 200);
	http_free(&h);
	assert_int_equal(stat_of(f, prompt, "video_creates"), 2);
	assert_int_equal(stat_of(f, prompt, "faults_injected"), 1);

	/* the same marker on a chat: one failure, then a normal stream */
	chat(f, &h, "chat retry [fault:500*1]", true, NULL);
	assert_int_equal(h.code, 500);
	http_free(&h);
	chat(f, &h, "chat retry [fault:500*1]", true, NULL);
	assert_int_equal(h.code, 200);
	assert_non_null(strstr(h.body, "data: [DONE]"));
	http_free(&h);
}

static void
test_429_carries_a_retry_hint_in_every_form(void **state)
{
	struct fake *f = *state;
	struct http h;
	char v[128];
	json_t *o;

	chat(f, &h, "busy [fault:429]", true, NULL);
	assert_int_equal(h.code, 429);
	assert_non_null(header(&h, "retry-after", v, sizeof(v)));
	assert_string_equal(v, "1");
	o = json_of(&h);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    o, "error"), "code")), "rate_limit_exceeded");
	json_decref(o);
	http_free(&h);

	chat(f, &h, "busy [fault:429-ms]", true, NULL);
	assert_int_equal(h.code, 429);
	assert_null(header(&h, "retry-after", v, sizeof(v)));
	assert_non_null(header(&h, "retry-after-ms", v, sizeof(v)));
	assert_string_equal(v, "1500");
	http_free(&h);

	chat(f, &h, "busy [fault:429-far]", true, NULL);
	assert_non_null(header(&h, "retry-after", v, sizeof(v)));
	assert_non_null(strstr(v, "2090 "));
	assert_non_null(strstr(v, " gmt"));	/* headers are lower-cased */
	http_free(&h);

	chat(f, &h, "broke", true, "X-Fake-Fault: quota");
	assert_int_equal(h.code, 429);
	assert_non_null(strstr(h.body, "insufficient_quota"));
	http_free(&h);
}

static void
test_drop_cuts_the_stream_without_done(void **state)
{
	struct fake *f = *state;
	struct http h;

	chat(f, &h, "fragile [fault:drop]", true, NULL);
	assert_int_equal(h.code, 200);
	assert_true(h.rc == CURLE_PARTIAL_FILE || h.rc == CURLE_RECV_ERROR);
	assert_null(strstr(h.body, "[DONE]"));
	assert_null(strstr(h.body, ".mp4"));
	http_free(&h);
}

static void
test_policy_is_an_error_event_then_done(void **state)
{
	struct fake *f = *state;
	struct http h;
	bool done;
	char *text;

	chat(f, &h, "forbidden [fault:policy]", true, NULL);
	assert_int_equal(h.code, 200);
	assert_int_equal(h.rc, CURLE_OK);
	assert_non_null(strstr(h.body, "data: {\"error\":"));
	assert_non_null(strstr(h.body, "sentinel_block"));
	text = sse_text(h.body, &done);
	assert_true(done);
	assert_null(strstr(text, ".mp4"));
	free(text);
	http_free(&h);
}

static void
test_api_key_is_required_when_set(void **state)
{
	static const char *const extra[] = { "--api-key", "sk-fake", NULL };
	struct fake k;
	struct http h;
	char url[128];

	(void)state;
	fake_start(&k, extra);
	snprintf(url, sizeof(url), "%s/v1/videos", k.base);
	http(&h, url, "{\"prompt\":\"p\"}", NULL);
	assert_int_equal(h.code, 401);
	assert_non_null(strstr(h.body, "invalid_api_key"));
	http_free(&h);
	http(&h, url, "{\"prompt\":\"p\"}", "Authorization: Bearer sk-fake");
	assert_int_equal(h.code, 200);
	http_free(&h);
	assert_int_equal(fake_stop(&k), 0);
}

static size_t
discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data, (void)arg;
	return size * nmemb;
}

static void
test_sigterm_with_streams_open_exits_zero(void **state)
{
	struct fake *f = *state;
	CURLM *m = curl_multi_init();
	CURL *e[3];
	int running, i, status;
	char url[128];

	/* three streams held open, one of them stalled, when SIGTERM comes */
	snprintf(url, sizeof(url), "%s/v1/chat/completions", f->base);
	for (i = 0; i < 3; i++) {
		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, url);
		curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, i ?
		    "{\"stream\":true,\"messages\":[{\"role\":\"user\","
		    "\"content\":\"held [fault:stall]\"}]}" :
		    "{\"stream\":true,\"messages\":[{\"role\":\"user\","
		    "\"content\":\"held [fault:never-ends]\"}]}");
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
		curl_multi_add_handle(m, e[i]);
	}
	for (i = 0; i < 20; i++) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 20, NULL);
	}
	assert_int_equal(running, 3);

	status = fake_stop(f);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (i = 0; i < 3; i++) {
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
	}
	curl_multi_cleanup(m);
}

static int
setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	fake_start(f, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fake *f = *state;

	fake_stop(f);
	free(f);
	curl_global_cleanup();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_file_and_banner_name_the_port),
		cmocka_unit_test(
		    test_chat_stream_in_every_style_ends_with_url_and_done),
		cmocka_unit_test(
		    test_chat_without_stream_answers_one_completion),
		cmocka_unit_test(test_videos_create_poll_content_cycle),
		cmocka_unit_test(test_stats_count_requests_per_prompt),
		cmocka_unit_test(
		    test_fault_500_once_fails_first_create_then_succeeds),
		cmocka_unit_test(test_429_carries_a_retry_hint_in_every_form),
		cmocka_unit_test(test_drop_cuts_the_stream_without_done),
		cmocka_unit_test(test_policy_is_an_error_event_then_done),
		cmocka_unit_test(test_api_key_is_required_when_set),
		cmocka_unit_test(test_sigterm_with_streams_open_exits_zero),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
