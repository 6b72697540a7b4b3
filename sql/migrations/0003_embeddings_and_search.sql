-- Text embeddings and similarity search.
--
-- RDS offers no in-database model (no PostgresML), so platform.embed() is a
-- deterministic stand-in: feature hashing. Each lower-cased token of two or
-- more letters or digits is hashed into one of 384 buckets with a hashed sign,
-- and the vector is L2-normalised, so the cosine similarity of two texts grows
-- with the words they share. It is the ONE seam for a real model: replace this
-- function (same signature, same dimension, or a migration that changes both)
-- and re-embed with `UPDATE api.rag_documents SET embedded_at = NULL`.

CREATE FUNCTION platform.embed(content text) RETURNS vector(384)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH tokens AS (
    SELECT token
    FROM regexp_split_to_table(lower(coalesce(content, '')), '[^a-z0-9]+') AS token
    WHERE length(token) > 1
  ),
  buckets AS (
    SELECT (abs(hashtext(token)::bigint) % 384)::int AS bucket,
           sum(CASE WHEN hashtext('sign:' || token) >= 0 THEN 1.0 ELSE -1.0 END) AS weight
    FROM tokens
    GROUP BY 1
  ),
  dense AS (
    SELECT g.bucket, coalesce(b.weight, 0)::float8 AS weight
    FROM generate_series(0, 383) AS g(bucket)
    LEFT JOIN buckets b USING (bucket)
  ),
  norm AS (
    SELECT sqrt(sum(weight * weight)) AS length FROM dense
  )
  -- No token, no direction: NULL rather than a zero vector (cosine undefined).
  SELECT CASE WHEN norm.length = 0 THEN NULL
              ELSE (SELECT array_agg(weight / norm.length ORDER BY bucket) FROM dense)::public.vector(384)
         END
  FROM norm
$$;

-- Approximate nearest neighbours by cosine distance.
CREATE INDEX rag_documents_embedding_hnsw ON api.rag_documents
  USING hnsw (embedding vector_cosine_ops);

-- A document whose text changes is embedded again by the next job run.
CREATE FUNCTION platform.forget_stale_embedding() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.title IS DISTINCT FROM OLD.title OR NEW.content IS DISTINCT FROM OLD.content THEN
    NEW.embedding := NULL;
    NEW.embedded_at := NULL;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

CREATE TRIGGER rag_documents_forget_stale_embedding
  BEFORE UPDATE ON api.rag_documents
  FOR EACH ROW EXECUTE FUNCTION platform.forget_stale_embedding();

-- The best `match_count` documents for `query`, most similar first.
-- Operators are schema-qualified: the body is parsed with the caller's search_path.
-- A single-statement SQL function, so the planner inlines it and the ORDER BY
-- ... LIMIT reaches the HNSW index (EXPLAIN SELECT * FROM api.search_documents(...)).
CREATE FUNCTION api.search_documents(query text, match_count int DEFAULT 5)
RETURNS TABLE (id bigint, title text, content text, source text, metadata jsonb, similarity float8)
LANGUAGE sql STABLE AS $$
  SELECT d.id, d.title, d.content, d.source, d.metadata,
         1 - (d.embedding OPERATOR(public.<=>) platform.embed(query)) AS similarity
  FROM api.rag_documents AS d
  WHERE d.embedding IS NOT NULL
  ORDER BY d.embedding OPERATOR(public.<=>) platform.embed(query)
  LIMIT least(greatest(match_count, 1), 100)
$$;

CREATE FUNCTION api.hello() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'hello world'::text $$;
