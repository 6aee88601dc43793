/*
 * client/ctl_videos.c: the "videos ..." commands (list, get, delete), the
 * user's gallery over vgen.v1.VideoService.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define SVC "/vgen.v1.VideoService/"

/* --json is global, but people put it after the command too. */
#define JSON_FLAG(ctl) { "json", CTL_FLAG_BOOL, &(ctl)->json, NULL, \
	"print JSON (the same as the global --json)" }

static json_t *
video_json(const Vgen__V1__Video *v)
{
	json_t *o = json_object();
	int err = 0;

	if (o == NULL)
		return NULL;
	err |= json_object_set_new(o, "id", ctl_json_str(v->id));
	err |= json_object_set_new(o, "user_id", ctl_json_str(v->user_id));
	err |= json_object_set_new(o, "prompt", ctl_json_str(v->prompt));
	err |= json_object_set_new(o, "orientation", ctl_json_enum(
	    &vgen__v1__orientation__descriptor, v->orientation));
	err |= json_object_set_new(o, "model_used",
	    ctl_json_str(v->model_used));
	err |= json_object_set_new(o, "video_url", ctl_json_str(v->video_url));
	err |= json_object_set_new(o, "thumbnail_url",
	    ctl_json_str(v->thumbnail_url));
	err |= json_object_set_new(o, "duration", json_integer(v->duration));
	err |= json_object_set_new(o, "status", ctl_json_enum(
	    &vgen__v1__video_status__descriptor, v->status));
	/* Text, as the proto has it: it is the provider's, not ours. */
	err |= json_object_set_new(o, "metadata", ctl_json_str(v->metadata));
	err |= json_object_set_new(o, "created_at",
	    ctl_json_time(v->created_at));
	err |= json_object_set_new(o, "updated_at",
	    ctl_json_time(v->updated_at));
	if (err != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
videos_row(const Vgen__V1__Video *v)
{
	char created[64], orient[32], dur[32];

	if (v->duration > 0)
		snprintf(dur, sizeof(dur), "%ds", v->duration);
	else
		snprintf(dur, sizeof(dur), "-");
	return json_pack("[s?,s,s,s,o,o]", v->id,
	    ctl_time_local(v->created_at, created, sizeof(created)),
	    ctl_enum_lower(&vgen__v1__orientation__descriptor, "",
	    v->orientation, orient, sizeof(orient)), dur,
	    ctl_json_str(v->prompt), ctl_json_str(v->video_url));
}

static int
print_videos(struct ctl *ctl, Vgen__V1__ListVideosResponse **pages, size_t n)
{
	json_t *videos = json_array();
	const char *next = n > 0 ? pages[n - 1]->next_page_token : "";
	size_t p, i;
	int err = videos == NULL;

	for (p = 0; p < n && !err; p++)
		for (i = 0; i < pages[p]->n_videos && !err; i++)
			err = json_array_append_new(videos, ctl->json ?
			    video_json(pages[p]->videos[i]) :
			    videos_row(pages[p]->videos[i])) < 0;
	return ctl_print_listing(ctl, "videos", videos, err,
	    json_pack("[s,s,s,s,s,s]", "ID", "CREATED", "ORIENTATION",
	    "DURATION", "PROMPT", "URL"), 4, next);
}

static int
videos_list(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__ListVideosRequest req = VGEN__V1__LIST_VIDEOS_REQUEST__INIT;
	ProtobufCMessage **pages = NULL;
	char *orientation = NULL, *size = NULL, *token = NULL;
	bool all = false;
	size_t n = 0;
	const struct ctl_flag flags[] = {
		{ "orientation", CTL_FLAG_STR, &orientation, "O",
		    "only portrait or only landscape videos" },
		{ "page-size", CTL_FLAG_STR, &size, "N", "videos per page, "
		    "at most 100 (default 20)" },
		{ "page-token", CTL_FLAG_STR, &token, "T", "start at this "
		    "page (next_page_token of the last)" },
		{ "all", CTL_FLAG_BOOL, &all, NULL, "fetch every page" },
		JSON_FLAG(ctl),
		{ NULL },
	};
	int o, rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (orientation != NULL) {
		o = ctl_enum_parse(&vgen__v1__orientation__descriptor, "",
		    orientation);
		if (o < 0)
			return ctl_usage(ctl, cmd, "--orientation: '%s' is "
			    "not portrait or landscape", orientation);
		req.orientation = o;
	}
	if (size != NULL && ctl_page_size_parse(size, &req.page_size) < 0)
		return ctl_usage(ctl, cmd, "--page-size: '%s' is not a "
		    "number from 0", size);
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;

	if (token != NULL)
		req.page_token = token;
	rv = ctl_pages_fetch(ctl, SVC "ListVideos", &req.base, &req.page_token,
	    &vgen__v1__list_videos_response__descriptor, all, &pages, &n);
	if (rv == 0)
		rv = print_videos(ctl, (Vgen__V1__ListVideosResponse **)pages,
		    n);
	ctl_pages_free(pages, n);
	return rv;
}

static int
videos_get(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	Vgen__V1__GetVideoRequest req = VGEN__V1__GET_VIDEO_REQUEST__INIT;
	const struct ctl_flag flags[] = { JSON_FLAG(ctl), { NULL } };
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	json_t *obj;
	char *id = NULL;
	int rv;

	rv = ctl_cmd_parse_id(ctl, cmd, flags, argc, argv, &id);
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;
	req.id = id;
	if (vgen_call(ctl->client, SVC "GetVideo", &req.base,
	    &vgen__v1__video__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	obj = video_json((const Vgen__V1__Video *)m);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}

static int
videos_delete(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__DeleteVideoRequest req = VGEN__V1__DELETE_VIDEO_REQUEST__INIT;
	const struct ctl_flag flags[] = { JSON_FLAG(ctl), { NULL } };
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	json_t *obj;
	char *id = NULL;
	int rv;

	rv = ctl_cmd_parse_id(ctl, cmd, flags, argc, argv, &id);
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;
	req.id = id;
	if (vgen_call(ctl->client, SVC "DeleteVideo", &req.base,
	    &vgen__v1__delete_video_response__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	protobuf_c_message_free_unpacked(m, NULL);
	/* DeleteVideoResponse is empty: say what was deleted. */
	obj = json_pack("{s:o,s:b}", "id", ctl_json_str(id), "deleted", 1);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	return rv;
}

static const struct ctl_cmd videos_cmds[] = {
	{ "list", "[--orientation O] [--page-size N] [--page-token T] [--all]",
	    "list your videos, newest first",
	    "A table: id, created (local time), orientation, duration, the "
	    "prompt cut\nto the terminal's width, and the URL.  With --json "
	    "one object:\n{\"videos\": [...], \"next_page_token\": \"...\"}; "
	    "the token is empty on the\nlast page.", videos_list },
	{ "get", "ID", "show a video", NULL, videos_get },
	{ "delete", "ID", "delete a video",
	    "The job that made it stays, without its video_id.",
	    videos_delete },
	{ NULL },
};

int
ctl_videos(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	(void)cmd;
	return ctl_dispatch(ctl, "videos", videos_cmds, argc - 1, argv + 1);
}
