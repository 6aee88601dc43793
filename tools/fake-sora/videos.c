/*
 * tools/fake-sora/videos.c: the OpenAI Videos API (sora-api.md §1) and
 * the media files both flows link to.
 *
 * A video's state is a function of the time since its creation: queued
 * for one step, then in_progress with progress rising over --steps x
 * --step-ms, then completed (progress 100, completed_at, expires_at an
 * hour later).  Faults chosen at create time change that course
 * (policy, fail-late, stall, never-ends, keepalive-only); faults chosen
 * at download time change the body (drop, slow, huge-body, ...).
 *
 * The bytes of a video are a function of its id: an MP4 "ftyp" box, a
 * "free" box and an "mdat" box of pseudo-random data, so any byte range
 * can be produced without keeping the file.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_sora.h"

#define MP4_HEAD 48		/* ftyp (32) + free (8) + mdat header (8) */
#define EXPIRY_S 3600		/* "download URLs are valid for 1 hour" */

/* ---- the bytes ----------------------------------------------------------- */

uint64_t
fs_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s != '\0') {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static void
be32(unsigned char *p, uint64_t v)
{
	if (v > 0xFFFFFFFFu)
		v = 1;		/* a 64-bit size would follow; close enough */
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

void
fs_video_fill(uint64_t seed, uint64_t total, uint64_t off, char *out,
    size_t len)
{
	static const unsigned char ftyp[32] = {
		0, 0, 0, 32, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm',
		0, 0, 2, 0, 'i', 's', 'o', 'm', 'i', 's', 'o', '2',
		'a', 'v', 'c', '1', 'm', 'p', '4', '1',
	};
	unsigned char head[MP4_HEAD];
	size_t i = 0;

	memcpy(head, ftyp, sizeof(ftyp));
	memcpy(head + 32, "\0\0\0\x08" "free", 8);
	be32(head + 40, total > 40 ? total - 40 : 8);
	memcpy(head + 44, "mdat", 4);

	for (; i < len && off + i < MP4_HEAD; i++)
		out[i] = (char)head[off + i];
	while (i < len) {
		uint64_t at = off + i;
		uint64_t w = splitmix(seed ^ (at / 8));
		unsigned k;

		for (k = at % 8; k < 8 && i < len; k++, i++)
			out[i] = (char)(w >> (8 * k));
	}
}

/* ---- the table ----------------------------------------------------------- */

static size_t
bucket(const struct fs_server *srv, const char *id)
{
	return (size_t)(fs_hash(id) % srv->video_buckets);
}

static struct fs_video *
video_find(struct fs_server *srv, const char *id)
{
	struct fs_video *v;

	if (srv->video_buckets == 0)
		return NULL;
	for (v = srv->videos[bucket(srv, id)]; v != NULL; v = v->hnext)
		if (strcmp(v->id, id) == 0)
			return v;
	return NULL;
}

static void
video_remove(struct fs_server *srv, struct fs_video *v)
{
	struct fs_video **pp = &srv->videos[bucket(srv, v->id)];

	while (*pp != v)
		pp = &(*pp)->hnext;
	*pp = v->hnext;
	if (v->older != NULL)
		v->older->newer = v->newer;
	else
		srv->oldest = v->newer;
	if (v->newer != NULL)
		v->newer->older = v->older;
	else
		srv->newest = v->older;
	srv->nvideos--;
	free(v->prompt);
	free(v);
}

static int
grow(struct fs_server *srv)
{
	size_t n = srv->video_buckets ? 2 * srv->video_buckets : 1024, i;
	struct fs_video **t = calloc(n, sizeof(*t)), *v;

	if (t == NULL)
		return -1;
	for (i = 0; i < srv->video_buckets; i++) {
		while ((v = srv->videos[i]) != NULL) {
			size_t b = (size_t)(fs_hash(v->id) % n);

			srv->videos[i] = v->hnext;
			v->hnext = t[b];
			t[b] = v;
		}
	}
	free(srv->videos);
	srv->videos = t;
	srv->video_buckets = n;
	return 0;
}

struct fs_video *
fs_video_add(struct fs_server *srv, const char *id, const char *prompt,
    bool chat)
{
	struct fs_video *v;
	size_t b;

	if (srv->nvideos >= srv->video_buckets && grow(srv) < 0)
		return NULL;
	v = calloc(1, sizeof(*v));
	if (v == NULL || (v->prompt = strdup(prompt)) == NULL) {
		free(v);
		return NULL;
	}
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->chat = chat;
	v->created_at = (int64_t)time(NULL);
	v->t0 = fs_now_ms();
	b = bucket(srv, id);
	v->hnext = srv->videos[b];
	srv->videos[b] = v;
	v->older = srv->newest;
	if (srv->newest != NULL)
		srv->newest->newer = v;
	else
		srv->oldest = v;
	srv->newest = v;
	srv->nvideos++;
	while (srv->nvideos > FS_VIDEOS_MAX)
		video_remove(srv, srv->oldest);
	return v;
}

void
fs_videos_clear(struct fs_server *srv)
{
	while (srv->oldest != NULL)
		video_remove(srv, srv->oldest);
}

/* video_get copies video `id` out of the table (prompt strdup'd; free
 * it).  False when there is no such video. */
static bool
video_get(struct fs_server *srv, const char *id, struct fs_video *out)
{
	struct fs_video *v;
	bool ok = false;

	pthread_mutex_lock(&srv->mu);
	v = video_find(srv, id);
	if (v != NULL) {
		*out = *v;
		out->prompt = strdup(v->prompt);
		ok = out->prompt != NULL;
	}
	pthread_mutex_unlock(&srv->mu);
	return ok;
}

/* ---- the state of a video ------------------------------------------------ */

struct vstate {
	const char *status;
	int progress;
	int64_t completed_at;	/* 0: null */
	const char *ecode, *emsg;
};

static int
rising(uint64_t el, uint64_t total)
{
	uint64_t p = total ? el * 100 / total : 99;

	return p < 1 ? 1 : p > 99 ? 99 : (int)p;
}

static void
video_state(struct fs_server *srv, const struct fs_video *v,
    struct vstate *s)
{
	uint64_t step = srv->step_ms, total = (uint64_t)srv->steps * step;
	uint64_t el = fs_now_ms() - v->t0;

	memset(s, 0, sizeof(*s));
	s->status = "in_progress";
	switch (v->behaviour) {
	case FS_F_KEEPALIVE_ONLY:
		s->status = "queued";
		return;
	case FS_F_STALL:
		if (el > 2 * step)
			el = 2 * step;
		break;
	case FS_F_NEVER_ENDS:
		if (el >= total)
			el = total;
		break;
	case FS_F_POLICY:
		if (el >= total * 2 / 5 + step) {
			s->status = "failed";
			s->progress = rising(total * 2 / 5, total);
			s->ecode = "moderation_blocked";
			s->emsg = "Your request was blocked by our moderation "
			    "system.";
			return;
		}
		break;
	case FS_F_FAIL_LATE:
		if (el >= total + step) {
			s->status = "failed";
			s->progress = 99;
			s->ecode = "internal_error";
			s->emsg = "Video generation failed due to an internal "
			    "error. Please try again.";
			return;
		}
		if (el >= total)
			el = total;
		break;
	default:
		if (el >= total) {
			s->status = "completed";
			s->progress = 100;
			s->completed_at = v->created_at +
			    (int64_t)(total / 1000);
			return;
		}
	}
	if (el < step) {
		s->status = "queued";
		s->progress = 0;
		return;
	}
	s->progress = rising(el, total);
}

/*
 * video_json is the Video object.  `full` adds the fields the guide's
 * create response leaves out; some videos (by id) carry the nulls and
 * an undocumented "quality", others omit them, as real responses vary.
 */
static json_t *
video_json(struct fs_server *srv, const struct fs_video *v, bool full)
{
	struct vstate s;
	json_t *o;
	bool nulls = fs_hash(v->id) % 2 == 0;

	video_state(srv, v, &s);
	o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:i,s:s,s:s}", "id", v->id,
	    "object", "video", "created_at", (json_int_t)v->created_at,
	    "status", s.status, "model", v->model, "progress", s.progress,
	    "seconds", v->seconds, "size", v->size);
	if (o == NULL || !full)
		return o;
	json_object_set_new(o, "prompt", json_string(v->prompt));
	if (s.completed_at != 0) {
		json_object_set_new(o, "completed_at",
		    json_integer(s.completed_at));
		json_object_set_new(o, "expires_at",
		    json_integer(s.completed_at + EXPIRY_S));
	} else if (nulls) {
		json_object_set_new(o, "completed_at", json_null());
		json_object_set_new(o, "expires_at", json_null());
	}
	if (s.ecode != NULL)
		json_object_set_new(o, "error", json_pack("{s:s,s:s}", "code",
		    s.ecode, "message", s.emsg));
	else if (nulls)
		json_object_set_new(o, "error", json_null());
	if (nulls) {
		json_object_set_new(o, "remixed_from_video_id", json_null());
		json_object_set_new(o, "quality", json_string("standard"));
	}
	return o;
}

/* ---- serving bytes ------------------------------------------------------- */

static enum MHD_Result
not_found(struct fs_req *rq, const char *id)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "Video with id '%.64s' not found.", id);
	return fs_reply_error(rq, 404, msg, "invalid_request_error", "id",
	    "not_found");
}

static enum MHD_Result
small_file(struct fs_req *rq, const char *variant)
{
	static const unsigned char webp[] = {
		'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'E', 'B', 'P',
		'V', 'P', '8', ' ', 24, 0, 0, 0, 0x30, 0x01, 0, 0x9d,
		0x01, 0x2a, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0,
	};
	static const unsigned char jpeg[] = {
		0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1,
		0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9,
	};

	if (strcmp(variant, "thumbnail") == 0)
		return fs_reply(rq, 200, "image/webp", (const char *)webp,
		    sizeof(webp), NULL);
	return fs_reply(rq, 200, "image/jpeg", (const char *)jpeg,
	    sizeof(jpeg), NULL);
}

/*
 * serve answers a download of video `id` with fault `f`: the error the
 * fault stands for, a redirect, or the bytes (whole, trickled, cut,
 * huge, chunked).  from_media: the request came to /media, whose
 * redirects must not loop.
 */
static enum MHD_Result
serve(struct fs_req *rq, const char *id, enum fs_fault f,
    const char *variant, bool from_media)
{
	struct fs_server *srv = rq->srv;
	struct fs_stream *st;
	char base[300], loc[512];
	uint64_t size;
	enum MHD_Result ret;

	if (fs_fault_reply(rq, f, &ret))
		return ret;
	switch (f) {
	case FS_F_NO_URL:
		return fs_reply_error(rq, 404, "The requested video has "
		    "expired.", "invalid_request_error", NULL, "not_found");
	case FS_F_CONTENT_REDIRECT:
		if (MHD_lookup_connection_value(rq->conn,
		    MHD_GET_ARGUMENT_KIND, "redirected") != NULL)
			break;
		fs_base_url(rq, base, sizeof(base));
		snprintf(loc, sizeof(loc), "%s/media/%s.mp4?redirected=1",
		    base, id);
		return fs_reply_redirect(rq, loc);
	case FS_F_URL_REDIRECT_PRIVATE:
		if (from_media)
			break;
		snprintf(loc, sizeof(loc), "http://127.0.0.2:%u/media/%s.mp4",
		    srv->port, id);
		return fs_reply_redirect(rq, loc);
	default:
		break;
	}
	if (variant != NULL && strcmp(variant, "video") != 0)
		return small_file(rq, variant);

	st = fs_stream_new(rq, NULL);
	if (st == NULL)
		return MHD_NO;
	st->seed = fs_hash(id);
	st->limit = srv->video_bytes;
	size = st->limit;
	switch (f) {
	case FS_F_HUGE_BODY:
		st->limit = size = FS_HUGE_BYTES;
		break;
	case FS_F_CHUNKED_20M:
		st->limit = FS_CHUNKED_BYTES;
		size = MHD_SIZE_UNKNOWN;
		break;
	case FS_F_DROP:
		st->drop_at = st->limit > 1 ? st->limit / 2 : 1;
		break;
	case FS_F_SLOW:
		st->piece = (size_t)(st->limit / srv->steps);
		if (st->piece == 0)
			st->piece = 1;
		break;
	default:
		break;
	}
	return fs_stream_queue(st, 200, size, "video/mp4", true);
}

/* ---- the endpoints ------------------------------------------------------- */

static bool
digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static bool
size_ok(const char *s)
{
	unsigned w, h;
	char end;

	return sscanf(s, "%u%*[x]%u%c", &w, &h, &end) == 2 && w > 0 && h > 0;
}

static enum MHD_Result
create(struct fs_req *rq)
{
	struct fs_server *srv = rq->srv;
	json_t *in, *jsec, *o = NULL;
	const char *prompt, *model, *seconds, *size;
	struct fs_video *v;
	char id[64];
	enum fs_fault f;
	enum MHD_Result ret;

	if (rq->form != NULL)
		in = json_incref(rq->form);
	else
		in = json_loads(rq->body ? rq->body : "", 0, NULL);
	if (!json_is_object(in)) {
		ret = fs_reply_error(rq, 400, "We could not parse the JSON "
		    "body of your request.", "invalid_request_error", NULL,
		    NULL);
		goto out;
	}
	prompt = json_string_value(json_object_get(in, "prompt"));
	if (prompt == NULL || prompt[0] == '\0') {
		ret = fs_reply_error(rq, 400, "Missing required parameter: "
		    "'prompt'.", "invalid_request_error", "prompt",
		    "missing_required_parameter");
		goto out;
	}
	fs_count(srv, prompt, FS_CREATE);

	jsec = json_object_get(in, "seconds");
	if (json_is_number(jsec)) {
		fs_fault_reply(rq, FS_F_400, &ret);	/* the real message */
		goto out;
	}
	seconds = jsec ? json_string_value(jsec) : "4";
	if (seconds == NULL || !digits(seconds) || strlen(seconds) > 3) {
		ret = fs_reply_error(rq, 400, "Invalid value for 'seconds'.",
		    "invalid_request_error", "seconds", "invalid_value");
		goto out;
	}
	size = json_string_value(json_object_get(in, "size"));
	if (size == NULL)
		size = "720x1280";
	if (!size_ok(size) || strlen(size) > 15) {
		ret = fs_reply_error(rq, 400, "Invalid value for 'size'.",
		    "invalid_request_error", "size", "invalid_value");
		goto out;
	}
	model = json_string_value(json_object_get(in, "model"));

	f = fs_fault_pick(rq, prompt, FS_FLOW_VIDEOS, FS_CREATE);
	if (fs_fault_reply(rq, f, &ret))
		goto out;

	strcpy(id, "video_");
	fs_random_hex(id + 6, 48);
	pthread_mutex_lock(&srv->mu);
	v = fs_video_add(srv, id, prompt, false);
	if (v != NULL) {
		snprintf(v->model, sizeof(v->model), "%s", model ? model :
		    "sora-2");
		snprintf(v->seconds, sizeof(v->seconds), "%s", seconds);
		snprintf(v->size, sizeof(v->size), "%s", size);
		if (f == FS_F_POLICY || f == FS_F_FAIL_LATE ||
		    f == FS_F_STALL || f == FS_F_NEVER_ENDS ||
		    f == FS_F_KEEPALIVE_ONLY)
			v->behaviour = f;
		o = video_json(srv, v, false);
	}
	pthread_mutex_unlock(&srv->mu);
	ret = fs_reply_json(rq, 200, o);
out:
	json_decref(in);
	return ret;
}

static enum MHD_Result
list(struct fs_req *rq)
{
	struct fs_server *srv = rq->srv;
	const char *lim = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "limit");
	const char *order = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "order");
	const char *after = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "after");
	bool asc = order != NULL && strcmp(order, "asc") == 0;
	long limit = lim ? strtol(lim, NULL, 10) : 20;
	json_t *data = json_array(), *o;
	struct fs_video *v;
	bool more = false;

	if (limit < 0 || limit > 100)
		limit = 100;
	pthread_mutex_lock(&srv->mu);
	v = after ? video_find(srv, after) : NULL;
	if (v != NULL)
		v = asc ? v->newer : v->older;
	else if (after == NULL)
		v = asc ? srv->oldest : srv->newest;
	for (; v != NULL; v = asc ? v->newer : v->older) {
		if (v->chat)
			continue;
		if (json_array_size(data) >= (size_t)limit) {
			more = true;
			break;
		}
		json_array_append_new(data, video_json(srv, v, true));
	}
	pthread_mutex_unlock(&srv->mu);
	o = json_pack("{s:s,s:o,s:o,s:o,s:b}", "object", "list", "data", data,
	    "first_id", json_array_size(data) ? json_incref(json_object_get(
	    json_array_get(data, 0), "id")) : json_null(),
	    "last_id", json_array_size(data) ? json_incref(json_object_get(
	    json_array_get(data, json_array_size(data) - 1), "id")) :
	    json_null(), "has_more", more);
	return fs_reply_json(rq, 200, o);
}

static enum MHD_Result
poll_video(struct fs_req *rq, const char *id)
{
	struct fs_server *srv = rq->srv;
	struct fs_video v;
	enum fs_fault f;
	enum MHD_Result ret;

	if (!video_get(srv, id, &v) || v.chat)
		return not_found(rq, id);
	fs_count(srv, v.prompt, FS_POLL);
	f = fs_fault_pick(rq, v.prompt, FS_FLOW_VIDEOS, FS_POLL);
	if (!fs_fault_reply(rq, f, &ret))
		ret = fs_reply_json(rq, 200, video_json(srv, &v, true));
	free(v.prompt);
	return ret;
}

static enum MHD_Result
delete_video(struct fs_req *rq, const char *id)
{
	struct fs_server *srv = rq->srv;
	struct fs_video *v;

	pthread_mutex_lock(&srv->mu);
	v = video_find(srv, id);
	if (v != NULL && !v->chat)
		video_remove(srv, v);
	pthread_mutex_unlock(&srv->mu);
	if (v == NULL)
		return not_found(rq, id);
	return fs_reply_json(rq, 200, json_pack("{s:s,s:s,s:b}", "id", id,
	    "object", "video.deleted", "deleted", 1));
}

static enum MHD_Result
content(struct fs_req *rq, const char *id)
{
	struct fs_server *srv = rq->srv;
	const char *variant = MHD_lookup_connection_value(rq->conn,
	    MHD_GET_ARGUMENT_KIND, "variant");
	struct fs_video v;
	struct vstate s;
	enum fs_fault f;
	enum MHD_Result ret;

	if (!video_get(srv, id, &v) || v.chat)
		return not_found(rq, id);
	fs_count(srv, v.prompt, FS_CONTENT);
	f = fs_fault_pick(rq, v.prompt, FS_FLOW_VIDEOS, FS_CONTENT);
	video_state(srv, &v, &s);
	free(v.prompt);
	if (fs_fault_reply(rq, f, &ret))
		return ret;
	if (strcmp(s.status, "completed") != 0)
		return fs_reply_error(rq, 404, "Video is not ready yet, use "
		    "GET /v1/videos/{video_id} to check its status.",
		    "invalid_request_error", NULL, "video_not_ready");
	if (variant != NULL && strcmp(variant, "video") != 0 &&
	    strcmp(variant, "thumbnail") != 0 &&
	    strcmp(variant, "spritesheet") != 0)
		return fs_reply_error(rq, 400, "Invalid value for 'variant'.",
		    "invalid_request_error", "variant", "invalid_value");
	return serve(rq, id, f, variant, false);
}

enum MHD_Result
fs_videos_handle(struct fs_req *rq, const char *method, const char *url)
{
	const char *rest = url + strlen("/v1/videos");
	char id[80];
	size_t n;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (!fs_authorized(rq))
		return fs_reply_error(rq, 401, "Incorrect API key provided",
		    "invalid_request_error", NULL, "invalid_api_key");
	if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
		if (strcmp(method, "POST") == 0)
			return create(rq);
		if (get)
			return list(rq);
		goto bad_method;
	}
	if (rest[0] != '/')
		goto unknown;
	rest++;
	n = strcspn(rest, "/");
	if (n == 0 || n >= sizeof(id))
		goto unknown;
	memcpy(id, rest, n);
	id[n] = '\0';
	rest += n;
	if (rest[0] == '\0') {
		if (get)
			return poll_video(rq, id);
		if (strcmp(method, "DELETE") == 0)
			return delete_video(rq, id);
		goto bad_method;
	}
	if (strcmp(rest, "/content") == 0) {
		if (get)
			return content(rq, id);
		goto bad_method;
	}
unknown:
	return fs_reply_error(rq, 404, "Unknown request URL.",
	    "invalid_request_error", NULL, "unknown_url");
bad_method:
	return fs_reply_error(rq, 405, "Method not allowed.",
	    "invalid_request_error", NULL, NULL);
}

enum MHD_Result
fs_media_handle(struct fs_req *rq, const char *url)
{
	struct fs_server *srv = rq->srv;
	const char *base = strrchr(url, '/');
	struct fs_video v;
	struct vstate s;
	enum fs_fault f = FS_F_NONE;
	bool known;
	char id[80];
	size_t n;

	base = base ? base + 1 : url;
	n = strlen(base);
	if (n <= 4 || n - 4 >= sizeof(id) || strcmp(base + n - 4, ".mp4"))
		return fs_reply_error(rq, 404, "No such file.",
		    "invalid_request_error", NULL, "not_found");
	memcpy(id, base, n - 4);
	id[n - 4] = '\0';

	known = video_get(srv, id, &v);
	if (rq->decoy) {
		/* The worker should never get here: count it, serve it. */
		pthread_mutex_lock(&srv->mu);
		srv->total_decoy++;
		if (known) {
			struct fs_prompt *p = fs_prompt_get(srv, v.prompt);

			if (p != NULL)
				p->decoy++;
		}
		pthread_mutex_unlock(&srv->mu);
		fs_log(srv, "decoy download of %s", id);
	} else {
		fs_count(srv, known ? v.prompt : NULL, FS_CONTENT);
		if (known)
			f = fs_fault_pick(rq, v.prompt, v.chat ? FS_FLOW_CHAT :
			    FS_FLOW_VIDEOS, FS_CONTENT);
	}
	if (known) {
		video_state(srv, &v, &s);
		free(v.prompt);
		if (!v.chat && strcmp(s.status, "completed") != 0)
			return fs_reply_error(rq, 404, "Video is not ready "
			    "yet.", "invalid_request_error", NULL,
			    "video_not_ready");
	}
	return serve(rq, id, f, NULL, true);
}
