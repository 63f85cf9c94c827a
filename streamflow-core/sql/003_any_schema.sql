-- Results of any schema (a pipeline declares its own columns): each pipeline records the table
-- its rows go to and the columns they were computed with; the base of a key's running columns
-- is an array, one value per running column. The results tables themselves are created from the
-- pipeline's column description; this index gets the name that description gives it.
ALTER TABLE pipeline_checkpoints
    ADD COLUMN results_table text,
    ADD COLUMN columns       text;

ALTER TABLE stream_checkpoints ADD COLUMN closed_running bigint[];
UPDATE stream_checkpoints SET closed_running = ARRAY[closed_net_viewers];
ALTER TABLE stream_checkpoints ALTER COLUMN closed_net_viewers DROP NOT NULL;

ALTER INDEX IF EXISTS stream_metrics_minute_by_stream RENAME TO stream_metrics_minute_by_stream_id;
