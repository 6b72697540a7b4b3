-- The privilege matrix. Everything not granted here is denied.
--
--                          web_anon (no token)   api_user (IDE token)
--   api.hello()            execute               execute
--   api.messages           -                     select, insert; update/delete own rows
--   api.conversations      -                     own rows only: select, insert, update, delete
--   api.rag_documents      -                     select, insert, update, delete
--   api.search_documents() -                     execute
--   api.schedule_training()-                     execute (queues a job as the caller)
--   api.training_jobs      -                     select (written only by functions and jobs)
--   api.model_metrics      -                     select (written only by jobs)
--   platform.*             -                     embed() and current_subject() only, used by the above
--
-- authenticator: login only, no privileges of its own.
-- The jobs run as the database owner (the master user), in pg_cron.

GRANT USAGE ON SCHEMA api TO web_anon, api_user;
GRANT USAGE ON SCHEMA platform TO api_user;

GRANT EXECUTE ON FUNCTION api.hello() TO web_anon, api_user;

GRANT SELECT, INSERT, UPDATE, DELETE ON api.messages, api.conversations, api.rag_documents TO api_user;
GRANT SELECT ON api.training_jobs, api.model_metrics TO api_user;
GRANT EXECUTE ON FUNCTION api.search_documents(text, int) TO api_user;
GRANT EXECUTE ON FUNCTION api.schedule_training(text, real) TO api_user;
GRANT EXECUTE ON FUNCTION platform.embed(text), platform.current_subject() TO api_user;

-- Row-level security: who wrote a row decides who may change it.
ALTER TABLE api.messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY messages_read ON api.messages FOR SELECT TO api_user USING (true);
CREATE POLICY messages_write ON api.messages FOR INSERT TO api_user
  WITH CHECK (author = platform.current_subject());
CREATE POLICY messages_change_own ON api.messages FOR UPDATE TO api_user
  USING (author = platform.current_subject()) WITH CHECK (author = platform.current_subject());
CREATE POLICY messages_delete_own ON api.messages FOR DELETE TO api_user
  USING (author = platform.current_subject());

-- Conversations are private to the person who had them.
ALTER TABLE api.conversations ENABLE ROW LEVEL SECURITY;
CREATE POLICY conversations_own ON api.conversations FOR ALL TO api_user
  USING (owner = platform.current_subject()) WITH CHECK (owner = platform.current_subject());
