-- 0002_queue: what the job queue needs on top of the data model.
--
-- attempts/max_attempts/run_after drive retries and backoff; locked_by and
-- locked_until are the worker's lease (every write after a claim is fenced
-- on locked_by + attempts); version is raised by every write to the row so
-- watchers order events without clocks; idempotency_key makes CreateJob
-- safe to repeat; model is the provider model the worker asked for.

ALTER TABLE video_jobs
  ADD COLUMN attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN max_attempts integer NOT NULL DEFAULT 3
    CHECK (max_attempts BETWEEN 1 AND 100),
  ADD COLUMN run_after timestamp NOT NULL DEFAULT now(),
  ADD COLUMN locked_by text,
  ADD COLUMN locked_until timestamp,
  ADD COLUMN version bigint NOT NULL DEFAULT 1,
  ADD COLUMN idempotency_key varchar(128),
  ADD COLUMN model varchar(100);

-- Claim: the oldest pending jobs that are due (run_after is rechecked).
CREATE INDEX idx_jobs_claim ON video_jobs (created_at)
  WHERE status = 'pending';
-- Reaper: processing jobs whose lease ran out.
CREATE INDEX idx_jobs_lease ON video_jobs (locked_until)
  WHERE status = 'processing';
-- A user's jobs newest first, with the id as tie-breaker (keyset pages).
CREATE INDEX idx_jobs_user_created_id ON video_jobs (user_id, created_at DESC, id DESC);
-- CreateJob retried with the same key finds the same job.
CREATE UNIQUE INDEX idx_jobs_user_idempotency ON video_jobs (user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
-- One job per video (the data model's one-to-one).
CREATE UNIQUE INDEX idx_jobs_video_id ON video_jobs (video_id)
  WHERE video_id IS NOT NULL;

-- Every write raises version and updated_at: no statement can forget.
CREATE FUNCTION vgen_job_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.version := OLD.version + 1;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER video_jobs_touch BEFORE UPDATE ON video_jobs
  FOR EACH ROW EXECUTE FUNCTION vgen_job_touch();

-- Notifications, in the writing transaction:
--   vgen_job_events  a visible change (JSON: the JobEvent fields);
--   vgen_jobs        a job became pending: wake the workers;
--   vgen_job_cancel  a job left processing behind its worker's back.
CREATE FUNCTION vgen_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT'
     OR NEW.status IS DISTINCT FROM OLD.status
     OR NEW.progress IS DISTINCT FROM OLD.progress
     OR NEW.video_id IS DISTINCT FROM OLD.video_id
     OR NEW.error_message IS DISTINCT FROM OLD.error_message THEN
    PERFORM pg_notify('vgen_job_events', json_build_object(
      'job_id', NEW.id, 'user_id', NEW.user_id, 'status', NEW.status,
      'progress', NEW.progress, 'video_id', NEW.video_id,
      'error_message', left(NEW.error_message, 500),
      'updated_at', (extract(epoch from NEW.updated_at) * 1000000)::int8,
      'version', NEW.version)::text);
  END IF;
  IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending') THEN
    PERFORM pg_notify('vgen_jobs', '');
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'processing'
     AND NEW.status <> 'processing' AND NEW.locked_by IS NULL
     AND OLD.locked_by IS NOT NULL THEN
    PERFORM pg_notify('vgen_job_cancel', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER video_jobs_notify AFTER INSERT OR UPDATE ON video_jobs
  FOR EACH ROW EXECUTE FUNCTION vgen_job_notify();

-- CreateJob in one call: per-user serialisation (so the active-job limit
-- holds under concurrency), the idempotency key, the limit, the insert.
-- outcome: 'created', 'existing' (same key), 'limit' or 'no_user'.
CREATE FUNCTION vgen_job_create(p_user uuid, p_prompt text,
    p_orientation orientation_type, p_key text, p_max_active integer,
    p_max_attempts integer, OUT outcome text, OUT job video_jobs)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM users WHERE id = p_user FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    outcome := 'no_user';
    RETURN;
  END IF;
  IF p_key IS NOT NULL THEN
    SELECT * INTO job FROM video_jobs
      WHERE user_id = p_user AND idempotency_key = p_key;
    IF FOUND THEN
      outcome := 'existing';
      RETURN;
    END IF;
  END IF;
  -- Count at most p_max_active rows: the check stays O(limit).
  IF (SELECT count(*) FROM (SELECT 1 FROM video_jobs WHERE user_id = p_user
      AND status IN ('pending', 'processing') LIMIT p_max_active) a)
      >= p_max_active THEN
    outcome := 'limit';
    RETURN;
  END IF;
  INSERT INTO video_jobs (user_id, prompt, orientation, idempotency_key,
      max_attempts)
    VALUES (p_user, p_prompt, p_orientation, p_key, p_max_attempts)
    RETURNING * INTO job;
  outcome := 'created';
END $$;
