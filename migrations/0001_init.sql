-- 0001_init: the data model's schema exactly as given in data-model.md.
-- Released: never edit; later files change what the queue needs.

CREATE TYPE orientation_type AS ENUM ('portrait', 'landscape');
CREATE TYPE video_status_type AS ENUM ('completed', 'failed');
CREATE TYPE job_status_type AS ENUM ('pending', 'processing', 'completed', 'failed');

CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  email VARCHAR(255) UNIQUE NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  username VARCHAR(50),
  avatar_url TEXT,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);

CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_created_at ON users(created_at);

CREATE TABLE videos (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  prompt TEXT NOT NULL,
  orientation orientation_type NOT NULL,
  model_used VARCHAR(100),
  video_url TEXT NOT NULL,
  thumbnail_url TEXT,
  duration INTEGER,
  status video_status_type DEFAULT 'completed',
  metadata JSONB,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);

CREATE INDEX idx_videos_user_id ON videos(user_id);
CREATE INDEX idx_videos_created_at ON videos(created_at);
CREATE INDEX idx_videos_user_created ON videos(user_id, created_at);

CREATE TABLE video_jobs (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  prompt TEXT NOT NULL,
  orientation orientation_type NOT NULL,
  status job_status_type DEFAULT 'pending',
  progress INTEGER DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
  error_message TEXT,
  external_job_id VARCHAR(255),
  video_id UUID REFERENCES videos(id) ON DELETE SET NULL,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW(),
  completed_at TIMESTAMP
);

CREATE INDEX idx_jobs_user_id ON video_jobs(user_id);
CREATE INDEX idx_jobs_status ON video_jobs(status);
CREATE INDEX idx_jobs_user_status_created ON video_jobs(user_id, status, created_at);
