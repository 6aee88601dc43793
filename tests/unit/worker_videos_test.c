/*
 * tests/unit/worker_videos_test.c: worker/videos.c, as case tables: video
 * objects of the OpenAI Videos API and the task-style proxies
 * (shared/sora-api.md §1.3, §3), HTTP error bodies (§1.6, §2.5, §4) and
 * the message helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrk_parse.h"

#define OPENAI_ID "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"

static void
test_video_objects(void **state)
{
	static const struct {
		const char *name, *json;
		const char *id;
		enum wrk_video_state st;
		int progress;
		const char *url;
		const char *error;	/* substring, or NULL for none */
		enum wrk_class cls;
		double seconds;
		int64_t expires_at;
	} cases[] = {
		{ "OpenAI create response, verbatim",
		  "{\"id\":\"" OPENAI_ID "\",\"object\":\"video\",\"created_at\":"
		  "1758941485,\"status\":\"queued\",\"model\":\"sora-2-pro\","
		  "\"progress\":0,\"seconds\":\"8\",\"size\":\"1280x720\"}",
		  OPENAI_ID, WRK_VIDEO_QUEUED, 0, NULL, NULL, WRK_CLASS_NONE, 8,
		  0 },
		{ "OpenAI poll at 33%",
		  "{\"id\":\"video_1\",\"object\":\"video\",\"status\":"
		  "\"in_progress\",\"progress\":33,\"quality\":\"standard\"}",
		  "video_1", WRK_VIDEO_RUNNING, 33, NULL, NULL, WRK_CLASS_NONE,
		  -1, 0 },
		{ "OpenAI completed: no URL, download /content",
		  "{\"id\":\"video_1\",\"object\":\"video\",\"model\":\"sora-2\","
		  "\"status\":\"completed\",\"progress\":100,\"created_at\":"
		  "1758941485,\"completed_at\":1758941790,\"expires_at\":"
		  "1758945390,\"prompt\":\"cat\",\"size\":\"1280x720\","
		  "\"seconds\":\"8\",\"remixed_from_video_id\":null,\"error\":null}",
		  "video_1", WRK_VIDEO_DONE, 100, NULL, NULL, WRK_CLASS_NONE, 8,
		  1758945390 },
		{ "OpenAI failed by moderation is policy",
		  "{\"id\":\"video_2\",\"object\":\"video\",\"status\":\"failed\","
		  "\"progress\":0,\"error\":{\"code\":\"moderation_blocked\","
		  "\"message\":\"Your request was blocked by our moderation "
		  "system.\"}}",
		  "video_2", WRK_VIDEO_FAILED, 0, NULL,
		  "Your request was blocked by our moderation system.",
		  WRK_CLASS_POLICY, -1, 0 },
		{ "failed at 99% with no error object",
		  "{\"id\":\"video_3\",\"status\":\"failed\",\"progress\":99}",
		  "video_3", WRK_VIDEO_FAILED, 99, NULL,
		  "the provider reported the video as failed",
		  WRK_CLASS_PERMANENT, -1, 0 },
		{ "Batch expired",
		  "{\"id\":\"video_4\",\"status\":\"expired\"}",
		  "video_4", WRK_VIDEO_FAILED, -1, NULL, "as expired",
		  WRK_CLASS_PERMANENT, -1, 0 },
		{ "New API submit: task_id",
		  "{\"task_id\":\"abcd1234efgh\",\"status\":\"queued\"}",
		  "abcd1234efgh", WRK_VIDEO_QUEUED, -1, NULL, NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "New API completed with url, format and metadata",
		  "{\"task_id\":\"abcd1234efgh\",\"status\":\"completed\",\"url\":"
		  "\"https://cdn.example.com/a.mp4\",\"format\":\"mp4\","
		  "\"metadata\":{\"duration\":5}}",
		  "abcd1234efgh", WRK_VIDEO_DONE, -1,
		  "https://cdn.example.com/a.mp4", NULL, WRK_CLASS_NONE, -1, 0 },
		{ "older New API words",
		  "{\"task_id\":\"t\",\"status\":\"succeeded\",\"progress\":\"100%\""
		  "}", "t", WRK_VIDEO_DONE, 100, NULL, NULL, WRK_CLASS_NONE, -1,
		  0 },
		{ "UniAll completed with video_url",
		  "{\"id\":\"gen_1\",\"object\":\"video.generation.job\",\"status\":"
		  "\"completed\",\"progress\":100,\"video_url\":\"https://u.example"
		  "/v.mp4\"}",
		  "gen_1", WRK_VIDEO_DONE, 100, "https://u.example/v.mp4", NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "EvoLink pending",
		  "{\"id\":\"task-unified-1757169743-7cvnl5zw\",\"object\":"
		  "\"video.generation.task\",\"status\":\"pending\",\"progress\":0}",
		  "task-unified-1757169743-7cvnl5zw", WRK_VIDEO_QUEUED, 0, NULL,
		  NULL, WRK_CLASS_NONE, -1, 0 },
		{ "PiAPI wrapper with an empty error",
		  "{\"code\":200,\"data\":{\"task_id\":\"p1\",\"status\":"
		  "\"completed\",\"output\":{\"video\":\"https://img.theapi.app/"
		  "ephemeral/x.mp4\"},\"error\":{\"code\":0,\"message\":\"\"}},"
		  "\"message\":\"success\"}",
		  "p1", WRK_VIDEO_DONE, -1, "https://img.theapi.app/ephemeral/"
		  "x.mp4", NULL, WRK_CLASS_NONE, -1, 0 },
		{ "PiAPI failure inside the wrapper",
		  "{\"code\":200,\"data\":{\"task_id\":\"p2\",\"status\":\"failed\","
		  "\"error\":{\"code\":10000,\"message\":\"generation failed\"}},"
		  "\"message\":\"success\"}",
		  "p2", WRK_VIDEO_FAILED, -1, NULL, "generation failed",
		  WRK_CLASS_PERMANENT, -1, 0 },
		{ "reseller ids, submitted, seconds \"15\"",
		  "{\"id\":\"sora-2:task_01k81e7r\",\"status\":\"submitted\","
		  "\"seconds\":\"15\"}",
		  "sora-2:task_01k81e7r", WRK_VIDEO_QUEUED, -1, NULL, NULL,
		  WRK_CLASS_NONE, 15, 0 },
		{ "GlobalAIOPC processing with nulls",
		  "{\"object\":\"video.generation\",\"status\":\"processing\","
		  "\"video_url\":null,\"error\":null}",
		  NULL, WRK_VIDEO_RUNNING, -1, NULL, NULL, WRK_CLASS_NONE, -1, 0 },
		{ "data[0].url", "{\"status\":\"SUCCESS\",\"data\":[{\"url\":"
		  "\"https://d.example/0.mp4\"},{\"url\":\"https://d.example/1."
		  "mp4\"}]}", NULL, WRK_VIDEO_DONE, -1, "https://d.example/0.mp4",
		  NULL, WRK_CLASS_NONE, -1, 0 },
		{ "content.result_url", "{\"status\":\"IN_PROGRESS\",\"content\":"
		  "{\"result_url\":\"https://c.example/r.mp4\"}}", NULL,
		  WRK_VIDEO_RUNNING, -1, "https://c.example/r.mp4", NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "meta_data.url", "{\"status\":\"Completed\",\"meta_data\":{"
		  "\"url\":\"https://m.example/m.mp4\"}}", NULL, WRK_VIDEO_DONE,
		  -1, "https://m.example/m.mp4", NULL, WRK_CLASS_NONE, -1, 0 },
		{ "result.video.url", "{\"status\":\"completed\",\"result\":{"
		  "\"video\":{\"url\":\"https://r.example/v.mp4\"}}}", NULL,
		  WRK_VIDEO_DONE, -1, "https://r.example/v.mp4", NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "url beats video_url; a non-http url is skipped",
		  "{\"status\":\"completed\",\"url\":\"/tmp/local.mp4\","
		  "\"video_url\":\"https://v.example/v.mp4\"}", NULL,
		  WRK_VIDEO_DONE, -1, "https://v.example/v.mp4", NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "progress as a real", "{\"status\":\"running\",\"progress\":"
		  "45.7}", NULL, WRK_VIDEO_RUNNING, 45, NULL, NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "progress out of range", "{\"status\":\"running\",\"progress\":"
		  "150}", NULL, WRK_VIDEO_RUNNING, 100, NULL, NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "negative progress", "{\"status\":\"running\",\"progress\":-5}",
		  NULL, WRK_VIDEO_RUNNING, 0, NULL, NULL, WRK_CLASS_NONE, -1, 0 },
		{ "progress as a word", "{\"status\":\"running\",\"progress\":"
		  "\"half\"}", NULL, WRK_VIDEO_RUNNING, -1, NULL, NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "progress \" 12.5 % \"", "{\"status\":\"NOT_START\",\"progress\":"
		  "\" 12.5 % \"}", NULL, WRK_VIDEO_QUEUED, 12, NULL, NULL,
		  WRK_CLASS_NONE, -1, 0 },
		{ "an unknown word", "{\"id\":\"x\",\"status\":\"thinking\"}", "x",
		  WRK_VIDEO_UNKNOWN, -1, NULL, NULL, WRK_CLASS_NONE, -1, 0 },
		{ "FAILURE with an error string", "{\"status\":\"FAILURE\","
		  "\"error\":\"Generation timed out\"}", NULL, WRK_VIDEO_FAILED,
		  -1, NULL, "Generation timed out", WRK_CLASS_PERMANENT, -1, 0 },
		{ "blocked is policy", "{\"status\":\"failed\",\"error\":{\"code\":"
		  "\"content_violation\",\"message\":\"Prompt blocked\"}}", NULL,
		  WRK_VIDEO_FAILED, -1, NULL, "Prompt blocked", WRK_CLASS_POLICY,
		  -1, 0 },
		{ "an error envelope without status counts as failed",
		  "{\"error\":{\"message\":\"Invalid type for 'seconds': expected "
		  "one of '4', '8', or '12', but got an integer instead.\","
		  "\"type\":\"invalid_request_error\",\"param\":\"seconds\","
		  "\"code\":\"invalid_type\"}}", NULL, WRK_VIDEO_FAILED, -1, NULL,
		  "Invalid type for 'seconds'", WRK_CLASS_PERMANENT, -1, 0 },
		{ "an error code without a message",
		  "{\"status\":\"failed\",\"error\":{\"code\":\"internal_error\"}}",
		  NULL, WRK_VIDEO_FAILED, -1, NULL, "error internal_error",
		  WRK_CLASS_PERMANENT, -1, 0 },
		{ "seconds as a number, an integer id",
		  "{\"id\":42,\"status\":\"cancelled\",\"seconds\":10}", "42",
		  WRK_VIDEO_FAILED, -1, NULL, "as cancelled", WRK_CLASS_PERMANENT,
		  10, 0 },
		{ "duration \"10s\"", "{\"status\":\"created\",\"duration\":"
		  "\"10s\"}", NULL, WRK_VIDEO_QUEUED, -1, NULL, NULL,
		  WRK_CLASS_NONE, 10, 0 },
		{ "state instead of status", "{\"state\":\"queueing\"}", NULL,
		  WRK_VIDEO_QUEUED, -1, NULL, NULL, WRK_CLASS_NONE, -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wrk_video_status v;
		const char *name = cases[i].name;
		int rv;

		memset(&v, 0, sizeof(v));
		rv = wrk_video_parse(cases[i].json, strlen(cases[i].json), &v);
		if (rv != 0)
			fail_msg("%s: rv %d", name, rv);
		if ((cases[i].id == NULL) != (v.id == NULL) ||
		    (v.id != NULL && strcmp(v.id, cases[i].id) != 0))
			fail_msg("%s: id %s", name, v.id ? v.id : "(null)");
		if (v.state != cases[i].st)
			fail_msg("%s: state %d", name, v.state);
		if (v.progress != cases[i].progress)
			fail_msg("%s: progress %d", name, v.progress);
		if ((cases[i].url == NULL) != (v.url == NULL) ||
		    (v.url != NULL && strcmp(v.url, cases[i].url) != 0))
			fail_msg("%s: url %s", name, v.url ? v.url : "(null)");
		if ((cases[i].error == NULL) != (v.error == NULL) ||
		    (v.error != NULL && strstr(v.error, cases[i].error) ==
		    NULL))
			fail_msg("%s: error %s", name,
			    v.error ? v.error : "(null)");
		if (v.error_class != cases[i].cls)
			fail_msg("%s: class %s", name,
			    wrk_class_name(v.error_class));
		if (v.seconds != cases[i].seconds)
			fail_msg("%s: seconds %g", name, v.seconds);
		if (v.expires_at != cases[i].expires_at)
			fail_msg("%s: expires_at %lld", name,
			    (long long)v.expires_at);
		wrk_video_status_fini(&v);
		wrk_video_status_fini(&v);
	}
}

static void
test_video_not_an_object_is_a_protocol_error(void **state)
{
	static const char *const bad[] = {
		"", "   ", "not json", "[{\"status\":\"completed\"}]", "\"queued\"",
		"{\"status\":\"queued\"", "<html>502</html>", "null",
	};
	struct wrk_video_status v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&v, 0x5a, sizeof(v));
		assert_int_equal(wrk_video_parse(bad[i], strlen(bad[i]), &v),
		    VG_EPROTO);
		/* out-parameters are written only on success */
		assert_int_equal(v.progress, 0x5a5a5a5a);
	}
}

static void
test_status_words(void **state)
{
	static const struct {
		const char *w;
		enum wrk_video_state st;
	} cases[] = {
		{ "queued", WRK_VIDEO_QUEUED }, { "PENDING", WRK_VIDEO_QUEUED },
		{ "submitted", WRK_VIDEO_QUEUED }, { "NOT_START", WRK_VIDEO_QUEUED },
		{ "created", WRK_VIDEO_QUEUED }, { "queueing", WRK_VIDEO_QUEUED },
		{ "in_progress", WRK_VIDEO_RUNNING },
		{ "IN_PROGRESS", WRK_VIDEO_RUNNING },
		{ "processing", WRK_VIDEO_RUNNING }, { "Running", WRK_VIDEO_RUNNING },
		{ "completed", WRK_VIDEO_DONE }, { "succeeded", WRK_VIDEO_DONE },
		{ "success", WRK_VIDEO_DONE }, { "SUCCESS", WRK_VIDEO_DONE },
		{ "failed", WRK_VIDEO_FAILED }, { "FAILURE", WRK_VIDEO_FAILED },
		{ "error", WRK_VIDEO_FAILED }, { "cancelled", WRK_VIDEO_FAILED },
		{ "canceled", WRK_VIDEO_FAILED }, { "expired", WRK_VIDEO_FAILED },
		{ "timeout", WRK_VIDEO_FAILED }, { " completed ", WRK_VIDEO_DONE },
		{ "complete", WRK_VIDEO_UNKNOWN }, { "queued2", WRK_VIDEO_UNKNOWN },
		{ "", WRK_VIDEO_UNKNOWN }, { NULL, WRK_VIDEO_UNKNOWN },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (wrk_video_state_word(cases[i].w) != cases[i].st)
			fail_msg("word \"%s\"", cases[i].w ? cases[i].w : "NULL");
}

#define SENTINEL_500 "{\"error\":{\"message\":\"API request failed: 400 - {\\n" \
	" \\\"error\\\": {\\n \\\"message\\\": \\\"Hmmm something didn't " \
	"look right with your request.\\\",\\n \\\"type\\\": \\\"invalid_" \
	"request_error\\\",\\n \\\"param\\\": null,\\n \\\"code\\\": \\\"" \
	"sentinel_block\\\"\\n }\\n}\",\"type\":\"server_error\",\"param\":" \
	"null,\"code\":null}}"

static void
test_http_errors(void **state)
{
	static const char json[] = "application/json";
	static const struct {
		const char *name;
		long status;
		const char *ct, *body;
		enum wrk_class cls;
		const char *msg;	/* exact */
		const char *code;
	} cases[] = {
		{ "429 rate limit", 429, json, "{\"error\":{\"message\":\"Rate "
		  "limit reached for requests\",\"type\":\"requests\",\"param\":"
		  "null,\"code\":\"rate_limit_exceeded\"}}", WRK_CLASS_RATE_LIMIT,
		  "Rate limit reached for requests", "rate_limit_exceeded" },
		{ "429 quota is not retried", 429, "application/json; charset="
		  "utf-8", "{\"error\":{\"message\":\"You exceeded your current "
		  "quota, please check your plan and billing details.\",\"type\":"
		  "\"insufficient_quota\",\"param\":null,\"code\":"
		  "\"insufficient_quota\"}}", WRK_CLASS_QUOTA, "You exceeded your "
		  "current quota, please check your plan and billing details.",
		  "insufficient_quota" },
		{ "gptproto 403 Insufficient balance", 403, json, "{\"error\":{"
		  "\"message\":\"Insufficient balance\",\"type\":\"403\"}}",
		  WRK_CLASS_QUOTA, "Insufficient balance", "403" },
		{ "402 payment required", 402, NULL, "", WRK_CLASS_QUOTA,
		  "HTTP 402 from the provider", "" },
		{ "401 bad key", 401, json, "{\"error\":{\"message\":\"Incorrect "
		  "API key provided: sk-abc***.\",\"type\":"
		  "\"invalid_request_error\",\"param\":null,\"code\":"
		  "\"invalid_api_key\"}}", WRK_CLASS_AUTH, "Incorrect API key "
		  "provided: sk-abc***.", "invalid_api_key" },
		{ "gptproto 401 Invalid signature", 401, json, "{\"error\":{"
		  "\"message\":\"Invalid signature\",\"type\":\"401\"}}",
		  WRK_CLASS_AUTH, "Invalid signature", "401" },
		{ "403 region", 403, json, "{\"error\":{\"code\":\"unsupported_"
		  "country_region_territory\",\"message\":\"Country, region, or "
		  "territory not supported\",\"param\":null,\"type\":\"request_"
		  "forbidden\"}}", WRK_CLASS_AUTH, "Country, region, or territory "
		  "not supported", "unsupported_country_region_territory" },
		{ "500 server_error", 500, json, "{\"error\":{\"message\":"
		  "\"The server had an error while processing your request.\","
		  "\"type\":\"server_error\"}}", WRK_CLASS_TRANSIENT, "The server "
		  "had an error while processing your request.", "server_error" },
		{ "sora2api 500 wrapping sentinel_block", 500, json, SENTINEL_500,
		  WRK_CLASS_POLICY, "Hmmm something didn't look right with your "
		  "request.", "sentinel_block" },
		{ "gptproto 503 Content policy violation", 503, json, "{\"error\":"
		  "{\"message\":\"Content policy violation\",\"type\":\"503\"}}",
		  WRK_CLASS_POLICY, "Content policy violation", "503" },
		{ "503 overloaded", 503, json, "{\"error\":{\"message\":\"The "
		  "engine is currently overloaded, please try again later\","
		  "\"type\":\"server_error\"}}", WRK_CLASS_TRANSIENT, "The engine "
		  "is currently overloaded, please try again later",
		  "server_error" },
		{ "502 HTML from a gateway", 502, "text/html", "<html>\r\n<head>"
		  "<title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 "
		  "Bad Gateway</h1></center><hr><center>nginx</center></body>"
		  "</html>", WRK_CLASS_TRANSIENT, "HTTP 502 from the provider",
		  "" },
		{ "504 HTML without a content type", 504, NULL, "<!DOCTYPE html>"
		  "<p>timeout</p>", WRK_CLASS_TRANSIENT,
		  "HTTP 504 from the provider", "" },
		{ "kie 500 as code/msg", 500, json, "{\"code\":500,\"msg\":\"This "
		  "interface is temporarily paused\"}", WRK_CLASS_TRANSIENT,
		  "This interface is temporarily paused", "500" },
		{ "a short plain-text body is shown", 500, "text/plain; charset="
		  "utf-8", "500: This interface is temporarily paused\n",
		  WRK_CLASS_TRANSIENT, "500: This interface is temporarily paused",
		  "" },
		{ "400 seconds as an integer", 400, json, "{\"error\":{\"message\":"
		  "\"Invalid type for 'seconds': expected one of '4', '8', or "
		  "'12', but got an integer instead.\",\"type\":\"invalid_request_"
		  "error\",\"param\":\"seconds\",\"code\":\"invalid_type\"}}",
		  WRK_CLASS_PERMANENT, "Invalid type for 'seconds': expected one "
		  "of '4', '8', or '12', but got an integer instead.",
		  "invalid_type" },
		{ "400 image size mismatch", 400, json, "{\"error\":{\"message\":"
		  "\"Inpaint image must match the requested width and height\","
		  "\"type\":\"invalid_request_error\",\"param\":null,\"code\":"
		  "null}}", WRK_CLASS_PERMANENT, "Inpaint image must match the "
		  "requested width and height", "invalid_request_error" },
		{ "400 moderation_blocked", 400, json, "{\"error\":{\"message\":"
		  "\"Your request was blocked by our moderation system.\","
		  "\"code\":\"moderation_blocked\"}}", WRK_CLASS_POLICY,
		  "Your request was blocked by our moderation system.",
		  "moderation_blocked" },
		{ "404 model gone", 404, json, "{\"error\":{\"message\":\"The "
		  "model `sora-2` does not exist or you do not have access to it."
		  "\",\"type\":\"invalid_request_error\",\"code\":\"model_not_"
		  "found\"}}", WRK_CLASS_PERMANENT, "The model `sora-2` does not "
		  "exist or you do not have access to it.", "model_not_found" },
		{ "FastAPI detail string", 500, json, "{\"detail\":\"Failed to "
		  "create video\"}", WRK_CLASS_TRANSIENT, "Failed to create video",
		  "" },
		{ "FastAPI validation list", 422, json, "{\"detail\":[{\"loc\":["
		  "\"body\",\"prompt\"],\"msg\":\"field required\",\"type\":"
		  "\"value_error.missing\"}]}", WRK_CLASS_PERMANENT,
		  "field required", "" },
		{ "error as a plain string", 400, json, "{\"error\":\"bad "
		  "orientation\"}", WRK_CLASS_PERMANENT, "bad orientation", "" },
		{ "408 and 409 are retried", 408, NULL, "", WRK_CLASS_TRANSIENT,
		  "HTTP 408 from the provider", "" },
		{ "409", 409, json, "{\"message\":\"conflict\"}",
		  WRK_CLASS_TRANSIENT, "conflict", "" },
		{ "an empty 503", 503, NULL, NULL, WRK_CLASS_TRANSIENT,
		  "HTTP 503 from the provider", "" },
		{ "JSON without a message", 400, json, "{\"foo\":1}",
		  WRK_CLASS_PERMANENT, "HTTP 400 from the provider", "" },
		{ "broken JSON", 400, json, "{\"error\":{\"message\":\"cut",
		  WRK_CLASS_PERMANENT, "HTTP 400 from the provider", "" },
		{ "control characters are cleaned", 400, json, "{\"error\":{"
		  "\"message\":\"line one\\nline\\ttwo\\u0000\"}}",
		  WRK_CLASS_PERMANENT, "HTTP 400 from the provider", "" },
		{ "control characters are cleaned, valid JSON", 400, json,
		  "{\"error\":{\"message\":\"  line one\\r\\nline\\ttwo\\u0007 \"}}",
		  WRK_CLASS_PERMANENT, "line one line two", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wrk_http_error e;
		const char *b = cases[i].body;
		int rv;

		rv = wrk_http_error_parse(cases[i].status, b, b ? strlen(b) : 0,
		    cases[i].ct, &e);
		if (rv != 0)
			fail_msg("%s: rv %d", cases[i].name, rv);
		if (e.status != cases[i].status || e.cls != cases[i].cls)
			fail_msg("%s: class %s", cases[i].name,
			    wrk_class_name(e.cls));
		if (strcmp(e.message, cases[i].msg) != 0)
			fail_msg("%s: message \"%s\"", cases[i].name, e.message);
		if (strcmp(e.code, cases[i].code) != 0)
			fail_msg("%s: code \"%s\"", cases[i].name, e.code);
		wrk_http_error_fini(&e);
		wrk_http_error_fini(&e);
	}
}

static void
test_http_error_edges(void **state)
{
	struct wrk_http_error e;
	size_t n = 1024 * 1024;
	char *html = malloc(n + 1);

	(void)state;
	memset(&e, 0x5a, sizeof(e));
	assert_int_equal(wrk_http_error_parse(200, "{}", 2, NULL, &e),
	    VG_EINVAL);
	assert_int_equal(e.status, 0x5a5a5a5a5a5a5a5a);	/* untouched */

	/* a megabyte of HTML: never shown, never parsed as text */
	assert_non_null(html);
	memset(html, 'x', n);
	memcpy(html, "<html>", 6);
	html[n] = '\0';
	assert_int_equal(wrk_http_error_parse(502, html, n, "text/html", &e),
	    0);
	assert_string_equal(e.message, "HTTP 502 from the provider");
	wrk_http_error_fini(&e);
	free(html);

	/* a long JSON message is cut for the user */
	{
		char body[4096];
		int k = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"");

		memset(body + k, 'm', 2000);
		strcpy(body + k + 2000, "\"}}");
		assert_int_equal(wrk_http_error_parse(400, body, strlen(body),
		    "application/json", &e), 0);
		assert_true(strlen(e.message) <= WRK_MSG_MAX);
		assert_string_equal(e.message + strlen(e.message) - 3,
		    "\xe2\x80\xa6");
		wrk_http_error_fini(&e);
	}
	/* a long plain-text body is not shown */
	{
		char body[600];

		memset(body, 'p', sizeof(body));
		assert_int_equal(wrk_http_error_parse(500, body, sizeof(body),
		    "text/plain", &e), 0);
		assert_string_equal(e.message, "HTTP 500 from the provider");
		wrk_http_error_fini(&e);
	}
	memset(&e, 0, sizeof(e));
	wrk_http_error_fini(&e);
}

static void
test_msg_clean(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "plain", 5, "plain" },
		{ "  trim me \t\n", 12, "trim me" },
		{ "a\r\nb\tc\x7f" "d", 8, "a b c d" },
		{ "nul\0inside", 10, "nul inside" },
		{ "bad \xff byte", 10, "bad ? byte" },
		{ "cut \xe2\x82", 6, "cut ??" },
		{ "overlong \xc0\xaf", 11, "overlong ??" },
		{ "C1 \xc2\x85 gone", 10, "C1 gone" },
		{ "\xe8\xbf\x9b\xe5\xba\xa6 76%", 10, "\xe8\xbf\x9b\xe5\xba\xa6 76%" },
		{ "", 0, "" },
	};
	char big[1000];
	char *m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = wrk_msg_clean(cases[i].in, cases[i].len);
		assert_non_null(m);
		if (strcmp(m, cases[i].out) != 0)
			fail_msg("clean %zu: \"%s\"", i, m);
		free(m);
	}
	/* exactly WRK_MSG_MAX bytes fit; one more is cut with an ellipsis */
	memset(big, 'a', sizeof(big));
	m = wrk_msg_clean(big, WRK_MSG_MAX);
	assert_int_equal(strlen(m), WRK_MSG_MAX);
	free(m);
	m = wrk_msg_clean(big, WRK_MSG_MAX + 1);
	assert_int_equal(strlen(m), WRK_MSG_MAX);
	assert_string_equal(m + WRK_MSG_MAX - 3, "\xe2\x80\xa6");
	free(m);
	/* cut between characters, never inside one, whatever the start */
	for (size_t i = 0; i + 3 <= sizeof(big); i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);	/* € */
	for (size_t off = 0; off < 3; off++) {
		m = wrk_msg_clean(big + off, 990);
		assert_true(strlen(m) <= WRK_MSG_MAX);
		assert_true(vg_utf8_valid(m, strlen(m)));
		assert_string_equal(m + strlen(m) - 3, "\xe2\x80\xa6");
		free(m);
	}
	m = wrk_msg_clean(big, 999);
	assert_true(vg_utf8_valid(m, strlen(m)));
	assert_true(strlen(m) <= WRK_MSG_MAX);
	free(m);
}

static void
test_policy_words(void **state)
{
	static const struct {
		const char *s;
		bool strict, loose;
	} cases[] = {
		{ "sentinel_block", true, true },
		{ "MODERATION_BLOCKED", true, true },
		{ "Content policy violation", true, true },
		{ "Your request was blocked by our moderation system.", true,
		  true },
		{ "content_filter", true, true },
		{ "Prompt blocked", false, true },
		{ "\xe5\x86\x85\xe5\xae\xb9\xe8\xbf\x9d\xe8\xa7\x84", false, true },
		{ "Rate limit reached", false, false },
		{ "", false, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *s = cases[i].s;

		if (wrk_text_is_policy(s, strlen(s), false) != cases[i].strict ||
		    wrk_text_is_policy(s, strlen(s), true) != cases[i].loose)
			fail_msg("policy \"%s\"", s);
	}
	assert_false(wrk_text_is_policy(NULL, 0, true));
}

static void
test_err_from_json(void **state)
{
	struct wrk_err_info info;
	json_error_t jerr;
	json_t *j;

	(void)state;
	/* nested three deep: the innermost message wins */
	j = json_loads("{\"error\":{\"message\":\"outer: {\\\"error\\\":{"
	    "\\\"message\\\":\\\"middle {\\\\\\\"message\\\\\\\":\\\\\\\""
	    "inner\\\\\\\",\\\\\\\"code\\\\\\\":\\\\\\\"c3\\\\\\\"}\\\","
	    "\\\"code\\\":\\\"c2\\\"}}\",\"code\":\"c1\"}}", 0, &jerr);
	assert_non_null(j);
	assert_int_equal(wrk_err_from_json(j, false, &info), 1);
	assert_string_equal(info.message, "inner");
	assert_string_equal(info.code, "c3");
	assert_false(info.policy);
	wrk_err_info_fini(&info);
	json_decref(j);

	/* a brace that is not JSON leaves the message as it is */
	j = json_loads("{\"error\":{\"message\":\"use {braces} here\"}}", 0,
	    &jerr);
	assert_int_equal(wrk_err_from_json(j, false, &info), 1);
	assert_string_equal(info.message, "use {braces} here");
	wrk_err_info_fini(&info);
	json_decref(j);

	/* message/msg count only for HTTP bodies */
	j = json_loads("{\"message\":\"success\",\"code\":200}", 0, &jerr);
	assert_int_equal(wrk_err_from_json(j, false, &info), 0);
	assert_null(info.message);
	assert_int_equal(wrk_err_from_json(j, true, &info), 1);
	assert_string_equal(info.message, "success");
	wrk_err_info_fini(&info);
	json_decref(j);

	/* error: true with the message beside it; detail as an object */
	j = json_loads("{\"error\":true,\"message\":\"quota gone\"}", 0, &jerr);
	assert_int_equal(wrk_err_from_json(j, false, &info), 1);
	assert_string_equal(info.message, "quota gone");
	wrk_err_info_fini(&info);
	json_decref(j);
	j = json_loads("{\"detail\":{\"message\":\"nope\"}}", 0, &jerr);
	assert_int_equal(wrk_err_from_json(j, false, &info), 1);
	assert_string_equal(info.message, "nope");
	wrk_err_info_fini(&info);
	json_decref(j);

	assert_int_equal(wrk_err_from_json(NULL, true, &info), 0);
	wrk_err_info_fini(&info);
}

static void
test_classes(void **state)
{
	(void)state;
	assert_true(wrk_class_retryable(WRK_CLASS_TRANSIENT));
	assert_true(wrk_class_retryable(WRK_CLASS_RATE_LIMIT));
	assert_false(wrk_class_retryable(WRK_CLASS_PERMANENT));
	assert_false(wrk_class_retryable(WRK_CLASS_POLICY));
	assert_false(wrk_class_retryable(WRK_CLASS_QUOTA));
	assert_false(wrk_class_retryable(WRK_CLASS_AUTH));
	assert_false(wrk_class_retryable(WRK_CLASS_NONE));
	assert_string_equal(wrk_class_name(WRK_CLASS_RATE_LIMIT), "rate_limit");
	assert_string_equal(wrk_class_name(WRK_CLASS_POLICY), "policy");
	assert_string_equal(wrk_class_name((enum wrk_class)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_video_objects),
		cmocka_unit_test(test_video_not_an_object_is_a_protocol_error),
		cmocka_unit_test(test_status_words),
		cmocka_unit_test(test_http_errors),
		cmocka_unit_test(test_http_error_edges),
		cmocka_unit_test(test_msg_clean),
		cmocka_unit_test(test_policy_words),
		cmocka_unit_test(test_err_from_json),
		cmocka_unit_test(test_classes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
