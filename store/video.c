/*
 * store/video.c: the videos table as the users see it: keyset pages,
 * one video, delete.  Videos are inserted by the worker's completion
 * (store_job_complete), never here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define VIDEO_COLS "id, user_id, prompt, model_used, video_url, " \
	"thumbnail_url, metadata::text, orientation::text, status::text, " \
	"duration, " STORE_TS_US("created_at") ", " STORE_TS_US("updated_at")

const struct store_stmt store_video_stmts[] = {
	/*
	 * A page of the gallery, and of one orientation of it: two
	 * statements, so that each has its own index in its generic plan.
	 */
	{ "video_list", "SELECT " VIDEO_COLS " FROM videos WHERE user_id = $1 "
	    "AND " STORE_KEYSET_BEFORE("$2", "$3") " "
	    "ORDER BY created_at DESC, id DESC LIMIT $4", 4, true },
	{ "video_list_orient", "SELECT " VIDEO_COLS " FROM videos "
	    "WHERE user_id = $1 AND orientation = $2::orientation_type "
	    "AND " STORE_KEYSET_BEFORE("$3", "$4") " "
	    "ORDER BY created_at DESC, id DESC LIMIT $5", 5, true },
	{ "video_get", "SELECT " VIDEO_COLS " FROM videos "
	    "WHERE id = $1 AND user_id = $2", 2, true },
	{ "video_delete", "DELETE FROM videos WHERE id = $1 AND user_id = $2 "
	    "RETURNING id", 2, true },
	{ NULL, NULL, 0, false },
};

void
store_video_fini(struct store_video *v)
{
	if (v == NULL)
		return;
	free(v->prompt);
	free(v->model_used);
	free(v->video_url);
	free(v->thumbnail_url);
	free(v->metadata);
	memset(v, 0, sizeof(*v));
}

/* Row `row`, its strings pointing into res (no copies). */
static void
video_view(const PGresult *res, int row, struct store_video *v)
{
	memset(v, 0, sizeof(*v));
	store_col_copy(v->id, sizeof(v->id), res, row, 0);
	store_col_copy(v->user_id, sizeof(v->user_id), res, row, 1);
	v->prompt = store_col_str(res, row, 2);
	v->model_used = store_col_str(res, row, 3);
	v->video_url = store_col_str(res, row, 4);
	v->thumbnail_url = store_col_str(res, row, 5);
	v->metadata = store_col_str(res, row, 6);
	v->orientation = strcmp(PQgetvalue(res, row, 7), "portrait") == 0 ?
	    STORE_PORTRAIT : STORE_LANDSCAPE;
	v->status = strcmp(PQgetvalue(res, row, 8), "failed") == 0 ?
	    STORE_VIDEO_FAILED : STORE_VIDEO_COMPLETED;
	v->duration = (int)store_col_i64(res, row, 9);
	v->created_us = store_col_ts_us(res, row, 10);
	v->updated_us = store_col_ts_us(res, row, 11);
}

/* Row `row` with strings of its own (store_video_fini it). */
static int
video_from_row(const PGresult *res, int row, struct store_video *out)
{
	struct store_video v;
	char **const strs[] = { &v.prompt, &v.model_used, &v.video_url,
	    &v.thumbnail_url, &v.metadata };
	int rv;

	video_view(res, row, &v);
	if ((rv = store_strs_own(strs, sizeof(strs) / sizeof(strs[0]))) < 0) {
		store_video_fini(&v);
		return rv;
	}
	*out = v;
	return 0;
}

/*
 * A page's rows: videos[0..*op->n), at most op->limit of them, viewing
 * the result (a page is 20 rows of five strings: not copying them is a
 * tenth of the server's CPU per ListVideos call).
 */
static int
video_list_parse(struct store_op *op, const PGresult *res)
{
	struct store_video *videos = op->out;
	int rows = PQntuples(res) < op->limit ? PQntuples(res) : op->limit;

	for (int i = 0; i < rows; i++)
		video_view(res, i, &videos[i]);
	*op->n = rows;
	return 0;
}

int
store_video_list_start(store_async *a, struct store_op *op,
    const char *user_id, int orientation, int64_t after_us,
    const char *after_id, int limit, struct store_video *videos, int *n)
{
	const char *orient = orientation == STORE_PORTRAIT ? "portrait" :
	    orientation == STORE_LANDSCAPE ? "landscape" : NULL;
	char us[24], lim[16];
	const char *all[] = { user_id, us, after_id, lim };
	const char *one[] = { user_id, orient, us, after_id, lim };

	if (!vg_uuid_valid(user_id) ||
	    (after_id != NULL && !vg_uuid_valid(after_id)))
		return VG_EINVAL;
	snprintf(us, sizeof(us), "%lld", (long long)after_us);
	snprintf(lim, sizeof(lim), "%d", limit);
	op->out = videos;
	op->n = n;
	op->limit = limit;
	return orient == NULL ?
	    store_async_send(a, op, "video_list", all, 4, video_list_parse) :
	    store_async_send(a, op, "video_list_orient", one, 5,
	    video_list_parse);
}

int
store_video_get(store_conn *db, const char *user_id, const char *id,
    struct store_video *v)
{
	const char *params[] = { id, user_id };
	PGresult *res = NULL;
	int rv;

	if (!vg_uuid_valid(id) || !vg_uuid_valid(user_id))
		return VG_ENOTFOUND;
	rv = store_query(db, "video_get", params, 2, &res);
	if (rv == 0 && PQntuples(res) == 0)
		rv = VG_ENOTFOUND;
	if (rv == 0)
		rv = video_from_row(res, 0, v);
	PQclear(res);
	return rv;
}

int
store_video_delete(store_conn *db, const char *user_id, const char *id)
{
	const char *params[] = { id, user_id };
	PGresult *res = NULL;
	int rv;

	if (!vg_uuid_valid(id) || !vg_uuid_valid(user_id))
		return VG_ENOTFOUND;
	rv = store_query(db, "video_delete", params, 2, &res);
	if (rv == 0 && PQntuples(res) == 0)
		rv = VG_ENOTFOUND;
	PQclear(res);
	return rv;
}
