/*
 * server/admin_service.c: AdminService, served on the admin endpoint only
 * (an ipc socket of mode 0600: the file system is the authentication, so
 * the calls take no token).  Stats for the dashboard, every user page by
 * page, and a failed job put back in the queue.
 */
#include <string.h>

#include "srv_int.h"

#define USERS_DEFAULT 20
#define USERS_MAX 100

static enum vg_status
get_stats(struct srv_call *call, const void *in, void *out)
{
	Vgen__V1__Stats *resp = out;
	struct store_stats s;
	size_t nst = 0;
	int rv;

	(void)in;
	rv = store_admin_stats(call->db, &s);
	if (rv < 0)
		return srv_call_status(call, rv);

	resp->users_total = s.users_total;
	resp->videos_total = s.videos_total;
	resp->avg_generation_seconds = s.avg_generation_s;
	resp->new_users_per_day = srv_call_alloc(call,
	    STORE_STATS_DAYS * sizeof(*resp->new_users_per_day));
	resp->jobs_by_status = srv_call_alloc(call,
	    STORE_JOB_FAILED * sizeof(*resp->jobs_by_status));
	if (resp->new_users_per_day == NULL || resp->jobs_by_status == NULL)
		return srv_call_status(call, VG_ENOMEM);
	for (int i = 0; i < s.ndays; i++) {
		Vgen__V1__DayCount *d = srv_call_alloc(call, sizeof(*d));

		if (d == NULL)
			return srv_call_status(call, VG_ENOMEM);
		vgen__v1__day_count__init(d);
		if ((d->day = srv_call_strdup(call, s.new_users[i].day)) ==
		    NULL)
			return srv_call_status(call, VG_ENOMEM);
		d->count = s.new_users[i].count;
		resp->new_users_per_day[i] = d;
	}
	resp->n_new_users_per_day = (size_t)s.ndays;
	/* Every status, zeros too: a client need not know the list. */
	for (int st = STORE_JOB_PENDING; st <= STORE_JOB_FAILED; st++) {
		Vgen__V1__StatusCount *c = srv_call_alloc(call, sizeof(*c));

		if (c == NULL)
			return srv_call_status(call, VG_ENOMEM);
		vgen__v1__status_count__init(c);
		c->status = (Vgen__V1__JobStatus)st;
		c->count = s.jobs_by_status[st];
		resp->jobs_by_status[nst++] = c;
	}
	resp->n_jobs_by_status = nst;
	return VG_STATUS_OK;
}

/*
 * ListUsers.  Page tokens are bound to the caller's user id, which the
 * admin endpoint does not have: the zeroed id stands for "the admin", so
 * a token of this listing never passes for a user's (the kind differs too).
 */
static enum vg_status
list_users(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__ListUsersRequest *req = in;
	Vgen__V1__ListUsersResponse *resp = out;
	char after_id[VG_UUID_STRLEN + 1];
	int64_t after_us = 0;
	struct store_user *users;
	enum vg_status st = VG_STATUS_OK;
	int size = req->page_size, n = 0, rv;

	memset(call->user_id, 0, sizeof(call->user_id));
	if (size == 0)
		size = USERS_DEFAULT;
	if (size < 0 || size > USERS_MAX)
		srv_call_invalid(call, "page_size", "from 0 to 100");
	if (req->page_token[0] != '\0' && srv_page_parse(call, SRV_PAGE_USERS,
	    req->page_token, &after_us, after_id) < 0)
		srv_call_invalid(call, "page_token",
		    "not a page token of this listing");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	/* One row more than asked tells whether another page follows. */
	users = srv_call_alloc(call, (size_t)(size + 1) * sizeof(*users));
	resp->users = srv_call_alloc(call, (size_t)size *
	    sizeof(*resp->users));
	if (users == NULL || resp->users == NULL)
		return srv_call_status(call, VG_ENOMEM);
	rv = store_admin_user_list(call->db, after_us,
	    req->page_token[0] ? after_id : NULL, size + 1, users, &n);
	if (rv < 0)
		return srv_call_status(call, rv);
	if (n > size && (resp->next_page_token = srv_page_token(call,
	    SRV_PAGE_USERS, users[size - 1].created_us,
	    users[size - 1].id)) == NULL)
		st = srv_call_status(call, VG_ENOMEM);
	for (int i = 0; i < n; i++) {
		if (st == VG_STATUS_OK && i < size &&
		    (resp->users[i] = srv_user_to_pb(call, &users[i])) == NULL)
			st = srv_call_status(call, VG_ENOMEM);
		store_user_fini(&users[i]);
	}
	if (st == VG_STATUS_OK)
		resp->n_users = (size_t)(n > size ? size : n);
	return st;
}

static enum vg_status
retry_job(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__RetryJobRequest *req = in;
	struct store_job job = { 0 };
	Vgen__V1__VideoJob *pb;
	int rv;

	if (!vg_uuid_valid(req->id))
		return srv_call_invalid(call, "id", "must be a UUID");
	rv = store_admin_job_retry(call->db, req->id, &job);
	if (rv == VG_EINVAL)
		return srv_call_fail(call, VG_FAILED_PRECONDITION,
		    "only a failed job can be retried");
	if (rv < 0)
		return srv_call_status(call, rv);
	vg_info("job retried by admin job_id=%s user_id=%s request_id=%s",
	    job.id, job.user_id, call->request_id);
	pb = srv_job_to_pb(call, &job);
	store_job_fini(&job);
	if (pb == NULL)
		return srv_call_status(call, VG_ENOMEM);
	*(Vgen__V1__VideoJob *)out = *pb;
	return VG_STATUS_OK;
}

/* No token: only the admin socket serves these (see server/main.c). */
const struct srv_handler_def srv_admin_handlers[] = {
	{ "GetStats", get_stats, SRV_LANE_DB, 0 },
	{ "ListUsers", list_users, SRV_LANE_DB, 0 },
	{ "RetryJob", retry_job, SRV_LANE_DB, 0 },
	{ NULL, NULL, 0, 0 },
};
