/*
 * server/job_service.c: VideoJobService.  Jobs are created pending and
 * handed to the workers through PostgreSQL (the insert notifies them);
 * every query is scoped to the caller, so another user's job is NOT_FOUND,
 * never PERMISSION_DENIED.  WaitJob is a long-poll woken by the event
 * hub (hub.c) without holding a thread (wait.c).
 */
#include <ctype.h>
#include <string.h>

#include "srv_int.h"

#define LIST_DEFAULT 20
#define LIST_MAX 100
#define ACTIVE_MAX 100

Vgen__V1__VideoJob *
srv_job_to_pb(struct srv_call *call, const struct store_job *j)
{
	Vgen__V1__VideoJob *pb = srv_call_alloc(call, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	vgen__v1__video_job__init(pb);
	pb->orientation = (Vgen__V1__Orientation)j->orientation;
	pb->status = (Vgen__V1__JobStatus)j->status;
	pb->progress = j->progress;
	pb->version = (uint64_t)j->version;
	pb->attempts = j->attempts;
	pb->max_attempts = j->max_attempts;
	if ((pb->id = srv_call_strdup(call, j->id)) == NULL ||
	    (pb->user_id = srv_call_strdup(call, j->user_id)) == NULL ||
	    (pb->prompt = srv_call_strdup(call, j->prompt)) == NULL ||
	    (pb->error_message = srv_call_strdup(call,
	    j->error_message)) == NULL ||
	    (pb->external_job_id = srv_call_strdup(call,
	    j->external_job_id)) == NULL ||
	    (pb->video_id = srv_call_strdup(call, j->video_id)) == NULL ||
	    (pb->model = srv_call_strdup(call, j->model)) == NULL ||
	    (pb->idempotency_key = srv_call_strdup(call,
	    j->idempotency_key)) == NULL ||
	    (pb->created_at = srv_ts_to_pb(call, j->created_us)) == NULL ||
	    (pb->updated_at = srv_ts_to_pb(call, j->updated_us)) == NULL)
		return NULL;
	if (j->completed_us != 0 &&
	    (pb->completed_at = srv_ts_to_pb(call, j->completed_us)) == NULL)
		return NULL;
	return pb;
}

/* Copies one job into the reply; frees the store's copy. */
static enum vg_status
job_reply(struct srv_call *call, struct store_job *j, Vgen__V1__VideoJob *out)
{
	Vgen__V1__VideoJob *pb = srv_job_to_pb(call, j);

	store_job_fini(j);
	if (pb == NULL)
		return srv_call_status(call, VG_ENOMEM);
	*out = *pb;
	return VG_STATUS_OK;
}

/* Fills resp->jobs from jobs[0..n) and frees them. */
static enum vg_status
jobs_reply(struct srv_call *call, struct store_job *jobs, int n,
    Vgen__V1__ListJobsResponse *resp)
{
	enum vg_status st = VG_STATUS_OK;

	resp->jobs = srv_call_alloc(call, (size_t)(n ? n : 1) *
	    sizeof(*resp->jobs));
	if (resp->jobs == NULL)
		st = srv_call_status(call, VG_ENOMEM);
	for (int i = 0; i < n; i++) {
		if (st == VG_STATUS_OK &&
		    (resp->jobs[i] = srv_job_to_pb(call, &jobs[i])) == NULL)
			st = srv_call_status(call, VG_ENOMEM);
		store_job_fini(&jobs[i]);
	}
	if (st == VG_STATUS_OK)
		resp->n_jobs = (size_t)n;
	return st;
}

static bool
blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

static bool
key_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
			return false;
	return n <= STORE_IDEMPOTENCY_KEY_MAX;
}

static enum vg_status
create_job(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__CreateJobRequest *req = in;
	const char *key = req->idempotency_key[0] ? req->idempotency_key : NULL;
	struct store_job job = { 0 };
	int outcome = 0, rv;

	if (blank(req->prompt))
		srv_call_invalid(call, "prompt", "required");
	else if (vg_utf8_len(req->prompt) > STORE_PROMPT_MAX)
		srv_call_invalid(call, "prompt", "at most 1000 characters");
	if (req->orientation != VGEN__V1__ORIENTATION__PORTRAIT &&
	    req->orientation != VGEN__V1__ORIENTATION__LANDSCAPE)
		srv_call_invalid(call, "orientation",
		    "must be PORTRAIT or LANDSCAPE");
	if (key != NULL && !key_ok(key))
		srv_call_invalid(call, "idempotency_key",
		    "at most 128 printable ASCII characters");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	rv = store_job_create(call->db, call->user_id, req->prompt,
	    (int)req->orientation, key, (int)call->srv->cfg.max_active_jobs,
	    (int)call->srv->cfg.job_max_attempts, &job, &outcome);
	if (rv == VG_ELIMIT)
		return srv_call_fail(call, VG_RESOURCE_EXHAUSTED,
		    "too many active jobs: wait for one to finish or cancel "
		    "one");
	if (rv < 0)
		return srv_call_user_status(call, rv);
	if (outcome == STORE_EXISTING && (strcmp(job.prompt, req->prompt) != 0 ||
	    job.orientation != (int)req->orientation)) {
		store_job_fini(&job);
		return srv_call_fail(call, VG_FAILED_PRECONDITION,
		    "idempotency_key was already used for a different request");
	}
	if (outcome == STORE_CREATED)
		vg_info("job created job_id=%s user_id=%s request_id=%s", job.id,
		    call->user_id, call->request_id);
	return job_reply(call, &job, out);
}

static enum vg_status
get_job(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__GetJobRequest *req = in;
	struct store_job job = { 0 };
	int rv;

	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	rv = store_job_get(call->db, call->user_id, req->id, &job);
	if (rv < 0)
		return srv_call_status(call, rv);
	return job_reply(call, &job, out);
}

static enum vg_status
list_active_jobs(struct srv_call *call, const void *in, void *out)
{
	struct store_job *jobs;
	int n = 0, rv;

	(void)in;
	jobs = srv_call_alloc(call, ACTIVE_MAX * sizeof(*jobs));
	if (jobs == NULL)
		return srv_call_status(call, VG_ENOMEM);
	rv = store_job_list_active(call->db, call->user_id, ACTIVE_MAX, jobs,
	    &n);
	if (rv < 0)
		return srv_call_status(call, rv);
	return jobs_reply(call, jobs, n, out);
}

static enum vg_status
list_jobs(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__ListJobsRequest *req = in;
	Vgen__V1__ListJobsResponse *resp = out;
	char after_id[VG_UUID_STRLEN + 1];
	int64_t after_us = 0;
	struct store_job *jobs;
	int size = req->page_size, status = (int)req->status, n = 0, rv;
	enum vg_status st;

	if (size == 0)
		size = LIST_DEFAULT;
	if (size < 0 || size > LIST_MAX)
		srv_call_invalid(call, "page_size", "from 0 to 100");
	if (status != 0 && store_job_status_name(status) == NULL)
		srv_call_invalid(call, "status", "not a job status");
	if (req->page_token[0] != '\0' && srv_page_parse(call, SRV_PAGE_JOBS,
	    req->page_token, &after_us, after_id) < 0)
		srv_call_invalid(call, "page_token",
		    "not a page token of this listing");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	/* One row more than asked tells whether another page follows. */
	jobs = srv_call_alloc(call, (size_t)(size + 1) * sizeof(*jobs));
	if (jobs == NULL)
		return srv_call_status(call, VG_ENOMEM);
	rv = store_job_list(call->db, call->user_id, status, after_us,
	    req->page_token[0] ? after_id : NULL, size + 1, jobs, &n);
	if (rv < 0)
		return srv_call_status(call, rv);
	if (n > size) {
		resp->next_page_token = srv_page_token(call, SRV_PAGE_JOBS,
		    jobs[size - 1].created_us, jobs[size - 1].id);
		store_job_fini(&jobs[size]);
		n = size;
		if (resp->next_page_token == NULL) {
			for (int i = 0; i < n; i++)
				store_job_fini(&jobs[i]);
			return srv_call_status(call, VG_ENOMEM);
		}
	}
	st = jobs_reply(call, jobs, n, resp);
	return st;
}

static enum vg_status
cancel_job(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__CancelJobRequest *req = in;
	struct store_job job = { 0 };
	int rv;

	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	rv = store_job_cancel(call->db, call->user_id, req->id, &job);
	if (rv < 0)
		return srv_call_status(call, rv);
	vg_info("job cancel job_id=%s status=%s request_id=%s", job.id,
	    store_job_status_name(job.status), call->request_id);
	return job_reply(call, &job, out);
}

/* A parked call answers this much before the caller's own deadline. */
#define WAIT_MARGIN_MS 100

/*
 * WaitJob: answers at once when the job's status or progress differs from
 * (known_status, known_progress) — known_status UNSPECIFIED always does —
 * else parks the call until it does or timeout_ms passes (0: 30 s; more
 * than 60 s: 60 s), then answers the job as it is then.  The wait also
 * ends WAIT_MARGIN_MS before the call's deadline (RpcRequest.timeout_ms),
 * so callers set their call timeout above timeout_ms.  Another user's job
 * is NOT_FOUND, like GetJob.
 */
static enum vg_status
wait_job(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__WaitJobRequest *req = in;
	struct srv_park *p = &call->park;
	struct store_job job = { 0 };
	int64_t timeout = req->timeout_ms, deadline;
	uint64_t seq = 0;
	int rv;

	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	if (timeout == 0)
		timeout = SRV_WAIT_DEFAULT_MS;
	if (timeout > SRV_WAIT_MAX_MS)
		timeout = SRV_WAIT_MAX_MS;
	/* Taken before the read: an event in between is not lost. */
	if (call->srv->waits != NULL)
		seq = srv_wait_seq(call->srv->waits);
	rv = store_job_get(call->db, call->user_id, req->id, &job);
	if (rv < 0)
		return srv_call_status(call, rv);
	deadline = vg_now_ms() + timeout;
	if (deadline > call->deadline_ms - WAIT_MARGIN_MS)
		deadline = call->deadline_ms - WAIT_MARGIN_MS;
	if (job.status == (int)req->known_status &&
	    job.progress == req->known_progress && deadline > vg_now_ms()) {
		p->want = true;
		memcpy(p->job_id, job.id, sizeof(p->job_id));
		memcpy(p->user_id, call->user_id, sizeof(p->user_id));
		p->known_status = job.status;
		p->known_progress = job.progress;
		p->deadline_ms = deadline;
		p->seq = seq;
	}
	return job_reply(call, &job, out);
}

const struct srv_handler_def srv_job_handlers[] = {
	{ "CreateJob", create_job, SRV_LANE_DB, SRV_AUTH | SRV_SELF_CHECK },
	{ "GetJob", get_job, SRV_LANE_DB, SRV_AUTH },
	{ "ListActiveJobs", list_active_jobs, SRV_LANE_DB, SRV_AUTH },
	{ "ListJobs", list_jobs, SRV_LANE_DB, SRV_AUTH },
	{ "CancelJob", cancel_job, SRV_LANE_DB, SRV_AUTH },
	{ "WaitJob", wait_job, SRV_LANE_DB, SRV_AUTH },
	{ NULL, NULL, 0, 0 },
};
