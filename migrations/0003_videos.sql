-- 0003_videos: keyset pages over a user's videos, newest first, need the
-- id as a tie-breaker for videos created in the same microsecond; this
-- index serves (user_id =, (created_at, id) <) ORDER BY created_at DESC,
-- id DESC LIMIT n with an index scan at any depth.
CREATE INDEX idx_videos_user_created_id ON videos (user_id, created_at DESC, id DESC);
