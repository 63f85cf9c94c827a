-- One writer per pipeline and results of one kind per schema (spec §4): each pipeline's row
-- records the settings its results were computed with and the generation of its current writer,
-- which every commit checks. Dead letters keep the record's key too.
ALTER TABLE pipeline_checkpoints
    ADD COLUMN topic            text,
    ADD COLUMN window_seconds   integer,
    ADD COLUMN lateness_seconds integer,
    ADD COLUMN generation       bigint NOT NULL DEFAULT 0;

ALTER TABLE dead_letters ADD COLUMN key bytea;
