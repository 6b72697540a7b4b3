-- The platform's tables, exposed through PostgREST in the `api` schema.

CREATE TABLE api.messages (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  author     text NOT NULL DEFAULT platform.current_subject(),
  content    text NOT NULL CHECK (length(content) BETWEEN 1 AND 10000),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The knowledge base the assistant retrieves from.
CREATE TABLE api.rag_documents (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title       text NOT NULL,
  content     text NOT NULL,
  source      text,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Filled by platform.generate_embeddings(); see 0003 for the model seam.
  embedding   vector(384),
  embedded_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Prompt/response pairs kept for fine-tuning, with a quality signal
-- (a user's rating or an automatic score) between 0 and 1.
CREATE TABLE api.conversations (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner      text NOT NULL DEFAULT platform.current_subject(),
  prompt     text NOT NULL,
  response   text NOT NULL,
  quality    real CHECK (quality BETWEEN 0 AND 1),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_created_at ON api.conversations (created_at);

CREATE TYPE api.training_job_state AS ENUM ('pending', 'running', 'succeeded', 'failed');

-- A queue: pending -> running -> succeeded | failed.
CREATE TABLE api.training_jobs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  state        api.training_job_state NOT NULL DEFAULT 'pending',
  base_model   text NOT NULL,
  min_quality  real NOT NULL CHECK (min_quality BETWEEN 0 AND 1),
  requested_by text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  error        text,
  result       jsonb,
  CHECK (state <> 'failed' OR error IS NOT NULL),
  CHECK (state NOT IN ('succeeded', 'failed') OR finished_at IS NOT NULL)
);
CREATE INDEX training_jobs_pending ON api.training_jobs (id) WHERE state = 'pending';

CREATE TABLE api.model_metrics (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id      bigint REFERENCES api.training_jobs (id) ON DELETE CASCADE,
  name        text NOT NULL,
  value       double precision NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_metrics_recorded_at ON api.model_metrics (recorded_at);
CREATE INDEX model_metrics_job ON api.model_metrics (job_id);

-- The dataset a training job was built from: which conversations it took.
CREATE TABLE platform.training_examples (
  job_id          bigint NOT NULL REFERENCES api.training_jobs (id) ON DELETE CASCADE,
  conversation_id bigint NOT NULL REFERENCES api.conversations (id) ON DELETE CASCADE,
  PRIMARY KEY (job_id, conversation_id)
);

-- The pg_cron jobs poolside scheduled (sql/jobs.toml): what it may correct or
-- unschedule. Jobs not listed here are someone else's and are left alone.
CREATE TABLE platform.scheduled_jobs (
  name         text PRIMARY KEY,
  scheduled_at timestamptz NOT NULL DEFAULT now()
);
