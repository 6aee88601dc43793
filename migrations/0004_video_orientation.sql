-- 0004_video_orientation: a gallery filtered by orientation pages on its
-- own index, (user_id =, orientation =, (created_at, id) <) ORDER BY
-- created_at DESC, id DESC LIMIT n, so that a user with few videos of the
-- asked orientation does not walk through all the others to fill a page.
CREATE INDEX idx_videos_user_orient_created_id
  ON videos (user_id, orientation, created_at DESC, id DESC);
