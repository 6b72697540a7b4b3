-- The bodies of the scheduled jobs (sql/jobs.toml) and schedule_training.
-- Each returns what it did, so a run is checkable from cron.job_run_details
-- and from tests.

-- Embeds up to `batch_size` documents that have no embedding yet.
-- SKIP LOCKED lets two overlapping runs share the work instead of waiting.
CREATE FUNCTION platform.generate_embeddings(batch_size int DEFAULT 100) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  embedded int;
BEGIN
  WITH batch AS (
    SELECT id FROM api.rag_documents
    WHERE embedded_at IS NULL
    ORDER BY id
    LIMIT batch_size
    FOR UPDATE SKIP LOCKED
  )
  UPDATE api.rag_documents AS d
  SET embedding = platform.embed(d.title || ' ' || d.content),
      embedded_at = now()
  FROM batch
  WHERE d.id = batch.id;
  GET DIAGNOSTICS embedded = ROW_COUNT;
  RETURN embedded;
END
$$;

-- Runs pending training jobs, oldest first. For each: builds the dataset
-- (the conversations at or above the job's quality threshold) into
-- platform.training_examples, records the dataset's metrics, and marks the
-- job succeeded; or, on any error, records it and marks the job failed.
-- The actual fine-tune runs outside the database, reading the dataset.
CREATE FUNCTION platform.process_training_jobs(max_jobs int DEFAULT 5) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  job api.training_jobs;
  processed int := 0;
  examples bigint;
  mean_quality float8;
  words bigint;
BEGIN
  FOR job IN
    SELECT * FROM api.training_jobs
    WHERE state = 'pending'
    ORDER BY id
    LIMIT max_jobs
    FOR UPDATE SKIP LOCKED
  LOOP
    UPDATE api.training_jobs SET state = 'running', started_at = now() WHERE id = job.id;
    BEGIN
      INSERT INTO platform.training_examples (job_id, conversation_id)
      SELECT job.id, c.id FROM api.conversations AS c
      WHERE c.quality >= job.min_quality;
      GET DIAGNOSTICS examples = ROW_COUNT;
      IF examples = 0 THEN
        RAISE EXCEPTION 'no conversations with quality >= % to train on', job.min_quality;
      END IF;

      SELECT avg(c.quality), sum(array_length(regexp_split_to_array(trim(c.prompt || ' ' || c.response), '\s+'), 1))
      INTO mean_quality, words
      FROM platform.training_examples AS e
      JOIN api.conversations AS c ON c.id = e.conversation_id
      WHERE e.job_id = job.id;

      INSERT INTO api.model_metrics (job_id, name, value) VALUES
        (job.id, 'dataset_examples', examples),
        (job.id, 'dataset_mean_quality', mean_quality),
        (job.id, 'dataset_words', words);

      UPDATE api.training_jobs
      SET state = 'succeeded', finished_at = now(),
          result = jsonb_build_object('examples', examples, 'mean_quality', mean_quality, 'words', words)
      WHERE id = job.id;
    EXCEPTION WHEN OTHERS THEN
      -- The block's work (examples, metrics) is rolled back; the failure is kept.
      UPDATE api.training_jobs
      SET state = 'failed', finished_at = now(), error = SQLERRM
      WHERE id = job.id;
    END;
    processed := processed + 1;
  END LOOP;
  RETURN processed;
END
$$;

-- Deletes metrics older than the retention period; returns how many.
CREATE FUNCTION platform.cleanup_metrics(retention interval DEFAULT '90 days') RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  deleted int;
BEGIN
  DELETE FROM api.model_metrics WHERE recorded_at < now() - retention;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$$;

-- Queues a fine-tune when at least `min_new_conversations` good conversations
-- arrived since the last job was queued. Returns the new job's id, or NULL.
CREATE FUNCTION platform.weekly_fine_tune(
  min_new_conversations int DEFAULT 50,
  min_quality real DEFAULT 0.7,
  base_model text DEFAULT 'poolside-base'
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  since timestamptz;
  arrived bigint;
  job_id bigint;
BEGIN
  -- One decision at a time, even if a run overlaps a manual call.
  PERFORM pg_advisory_xact_lock(hashtext('platform.weekly_fine_tune'));
  SELECT coalesce(max(created_at), '-infinity') INTO since FROM api.training_jobs;
  SELECT count(*) INTO arrived FROM api.conversations
  WHERE created_at > since AND quality >= min_quality;
  IF arrived < min_new_conversations THEN
    RETURN NULL;
  END IF;
  INSERT INTO api.training_jobs (base_model, min_quality, requested_by)
  VALUES (base_model, min_quality, 'weekly-fine-tune')
  RETURNING id INTO job_id;
  RETURN job_id;
END
$$;

-- What an API user calls to ask for a fine-tune: queues a job and returns it.
-- SECURITY DEFINER because api_user may not write training_jobs directly;
-- the function fixes what the row may contain.
CREATE FUNCTION api.schedule_training(base_model text DEFAULT 'poolside-base', min_quality real DEFAULT 0.7)
RETURNS api.training_jobs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  job api.training_jobs;
BEGIN
  IF min_quality IS NULL OR min_quality < 0 OR min_quality > 1 THEN
    RAISE EXCEPTION 'min_quality must be between 0 and 1' USING ERRCODE = '22023';
  END IF;
  IF base_model IS NULL OR length(base_model) NOT BETWEEN 1 AND 200 THEN
    RAISE EXCEPTION 'base_model must be 1 to 200 characters' USING ERRCODE = '22023';
  END IF;
  INSERT INTO api.training_jobs (base_model, min_quality, requested_by)
  VALUES (base_model, min_quality, platform.current_subject())
  RETURNING * INTO job;
  RETURN job;
END
$$;
