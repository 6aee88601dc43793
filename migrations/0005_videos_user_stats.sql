-- 0005_videos_user_stats: the gallery's plan must not depend on how the
-- videos happen to be spread over users today.  The server plans its
-- statements once, generically (plan_cache_mode = force_generic_plan), so
-- "user_id = $1" is estimated as 1/n_distinct(user_id) of the table.  On a
-- young or skewed table, one user owning most videos, ANALYZE measures a
-- tiny n_distinct, and the page plan turns to idx_videos_created_at with a
-- user filter: another user's page then reads the heavy user's rows (5
-- videos behind 10,000 newer: 10,000 rows read, 30x slower).  Declare the
-- shape a gallery has instead, about 100 videos per user on average, so
-- every page reads its own user's index whatever the table holds.
ALTER TABLE videos ALTER COLUMN user_id SET (n_distinct = -0.01);
ANALYZE videos;
