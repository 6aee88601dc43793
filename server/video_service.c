/*
 * server/video_service.c: VideoService, the user's gallery.  Keyset pages
 * newest first with MAC'd page tokens; every query is scoped to the
 * caller, so another user's video is NOT_FOUND.
 */
#include <string.h>

#include "srv_int.h"

#define LIST_DEFAULT 20
#define LIST_MAX 100

static Vgen__V1__Video *
video_to_pb(struct srv_call *call, const struct store_video *v)
{
	Vgen__V1__Video *pb = srv_call_alloc(call, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	vgen__v1__video__init(pb);
	pb->orientation = (Vgen__V1__Orientation)v->orientation;
	pb->status = (Vgen__V1__VideoStatus)v->status;
	pb->duration = v->duration;
	if ((pb->id = srv_call_strdup(call, v->id)) == NULL ||
	    (pb->user_id = srv_call_strdup(call, v->user_id)) == NULL ||
	    (pb->prompt = srv_call_strdup(call, v->prompt)) == NULL ||
	    (pb->model_used = srv_call_strdup(call, v->model_used)) == NULL ||
	    (pb->video_url = srv_call_strdup(call, v->video_url)) == NULL ||
	    (pb->thumbnail_url = srv_call_strdup(call,
	    v->thumbnail_url)) == NULL ||
	    (pb->metadata = srv_call_strdup(call, v->metadata)) == NULL ||
	    (pb->created_at = srv_ts_to_pb(call, v->created_us)) == NULL ||
	    (pb->updated_at = srv_ts_to_pb(call, v->updated_us)) == NULL)
		return NULL;
	return pb;
}

/*
 * ListVideos reads without a thread: the page comes back on a store
 * thread (list_done), and so does the user check of an empty page.
 */
struct list_videos {
	struct store_op op;
	struct srv_call *call;
	int size;			/* rows asked for; one more is read */
	struct store_video *vids;	/* size + 1, call memory */
	int n;
};

/*
 * Fills the response from the rows read, copying them into call memory:
 * they view the read's result, which dies when done returns, and the
 * reply may be packed later, by the dispatcher (srv_call_resume).
 */
static enum vg_status
list_reply(struct list_videos *g)
{
	struct srv_call *call = g->call;
	Vgen__V1__ListVideosResponse *resp = call->out;
	struct store_video *vids = g->vids;
	int size = g->size, n = g->n;
	enum vg_status st = VG_STATUS_OK;

	if (n > size) {
		resp->next_page_token = srv_page_token(call, SRV_PAGE_VIDEOS,
		    vids[size - 1].created_us, vids[size - 1].id);
		if (resp->next_page_token == NULL)
			st = srv_call_status(call, VG_ENOMEM);
	}
	resp->videos = srv_call_alloc(call, (size_t)(n ? n : 1) *
	    sizeof(*resp->videos));
	if (resp->videos == NULL && st == VG_STATUS_OK)
		st = srv_call_status(call, VG_ENOMEM);
	for (int i = 0; i < n && i < size && st == VG_STATUS_OK; i++)
		if ((resp->videos[i] = video_to_pb(call, &vids[i])) == NULL)
			st = srv_call_status(call, VG_ENOMEM);
	if (st == VG_STATUS_OK)
		resp->n_videos = (size_t)(n > size ? size : n);
	return st;
}

static void
list_user_done(struct store_op *op, int rv)
{
	struct list_videos *g = (struct list_videos *)(void *)op;
	enum vg_status st = srv_call_user_status(g->call, rv);

	srv_call_resume(g->call, st == VG_STATUS_OK ? list_reply(g) : st);
}

static void
list_done(struct store_op *op, int rv)
{
	struct list_videos *g = (struct list_videos *)(void *)op;
	struct srv_call *call = g->call;

	if (rv < 0) {
		srv_call_resume(call, srv_call_status(call, rv));
		return;
	}
	/*
	 * A video on the page proves its owner exists (videos go with their
	 * user, ON DELETE CASCADE), so only an empty page asks the database
	 * whether the token's user is still there.
	 */
	if (g->n == 0) {
		op->done = list_user_done;
		if ((rv = store_user_exists_start(call->srv->reads, op,
		    call->user_id)) < 0)
			list_user_done(op, rv);
		return;
	}
	srv_call_resume(call, list_reply(g));
}

static enum vg_status
list_videos(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__ListVideosRequest *req = in;
	struct list_videos *g;
	char after_id[VG_UUID_STRLEN + 1];
	int64_t after_us = 0;
	int size = req->page_size, rv;

	(void)out;
	if (size == 0)
		size = LIST_DEFAULT;
	if (size < 0 || size > LIST_MAX)
		srv_call_invalid(call, "page_size", "from 0 to 100");
	if (req->orientation != 0 &&
	    req->orientation != VGEN__V1__ORIENTATION__PORTRAIT &&
	    req->orientation != VGEN__V1__ORIENTATION__LANDSCAPE)
		srv_call_invalid(call, "orientation", "not an orientation");
	if (req->page_token[0] != '\0' && srv_page_parse(call,
	    SRV_PAGE_VIDEOS, req->page_token, &after_us, after_id) < 0)
		srv_call_invalid(call, "page_token",
		    "not a page token of this listing");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	/* One row more than asked tells whether another page follows. */
	g = srv_call_alloc(call, sizeof(*g));
	if (g == NULL || (g->vids = srv_call_alloc(call,
	    (size_t)(size + 1) * sizeof(*g->vids))) == NULL)
		return srv_call_status(call, VG_ENOMEM);
	g->op.done = list_done;
	g->call = call;
	g->size = size;
	srv_call_defer(call);
	rv = store_video_list_start(call->srv->reads, &g->op, call->user_id,
	    (int)req->orientation, after_us,
	    req->page_token[0] ? after_id : NULL, size + 1, g->vids, &g->n);
	if (rv < 0)
		list_done(&g->op, rv);
	return VG_STATUS_OK;
}

static enum vg_status
get_video(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__GetVideoRequest *req = in;
	struct store_video v = { 0 };
	Vgen__V1__Video *pb;
	int rv;

	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	rv = store_video_get(call->db, call->user_id, req->id, &v);
	if (rv < 0)
		return srv_call_status(call, rv);
	pb = video_to_pb(call, &v);
	store_video_fini(&v);
	if (pb == NULL)
		return srv_call_status(call, VG_ENOMEM);
	*(Vgen__V1__Video *)out = *pb;
	return VG_STATUS_OK;
}

static enum vg_status
delete_video(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__DeleteVideoRequest *req = in;
	int rv;

	(void)out;
	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	rv = store_video_delete(call->db, call->user_id, req->id);
	if (rv < 0)
		return srv_call_status(call, rv);
	vg_info("video deleted video_id=%s user_id=%s request_id=%s", req->id,
	    call->user_id, call->request_id);
	return VG_STATUS_OK;
}

const struct srv_handler_def srv_video_handlers[] = {
	{ "ListVideos", list_videos, SRV_LANE_INLINE,
	    SRV_AUTH | SRV_SELF_CHECK },
	{ "GetVideo", get_video, SRV_LANE_DB, SRV_AUTH },
	{ "DeleteVideo", delete_video, SRV_LANE_DB, SRV_AUTH },
	{ NULL, NULL, 0, 0 },
};
