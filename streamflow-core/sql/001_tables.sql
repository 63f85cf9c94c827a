-- The results, the refused records, and what a restart needs (spec §3, §4, §5).
-- Applied once, in a transaction, by the runner or by PostgresSink::migrate.

-- One row per (window, stream): the aggregates of spec §3.
CREATE TABLE stream_metrics_minute (
    window_start     timestamptz   NOT NULL,
    window_end       timestamptz   NOT NULL,
    stream_id        text          NOT NULL,
    events           bigint        NOT NULL,
    chat_messages    bigint        NOT NULL,
    donations_count  bigint        NOT NULL,
    donations_usd    numeric(18,2) NOT NULL,
    viewer_joins     bigint        NOT NULL,
    viewer_leaves    bigint        NOT NULL,
    net_viewer_delta bigint        NOT NULL,
    unique_viewers   bigint        NOT NULL,
    active_viewers   bigint        NOT NULL,
    -- The window has closed: this row will not change again.
    is_final         boolean       NOT NULL DEFAULT false,
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, stream_id)
);
-- A stream's windows in time order: /streams/{id}/metrics and /metrics?stream_id=.
CREATE INDEX stream_metrics_minute_by_stream ON stream_metrics_minute (stream_id, window_start DESC);

-- Each stream's running audience as of its newest window.
CREATE TABLE stream_state (
    stream_id      text        PRIMARY KEY,
    active_viewers bigint      NOT NULL,
    window_start   timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Records the pipeline refused, with the rule each broke.
CREATE TABLE dead_letters (
    pipeline    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    reason      text        NOT NULL,
    detail      text,
    event_id    text,
    payload     bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, topic, partition, "offset")
);
CREATE INDEX dead_letters_by_reason ON dead_letters (reason, received_at);

-- Per partition: the next offset to read (everything before it is in the tables above), and
-- where a restart reads from to rebuild the windows still open.
CREATE TABLE source_offsets (
    pipeline      text        NOT NULL,
    topic         text        NOT NULL,
    partition     integer     NOT NULL,
    next_offset   bigint      NOT NULL,
    max_ts        timestamptz,
    replay_from   bigint      NOT NULL,
    replay_max_ts timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline, topic, partition)
);

-- Per pipeline: the watermark through which windows are closed (their rows are final).
CREATE TABLE pipeline_checkpoints (
    pipeline       text        PRIMARY KEY,
    closed_through timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Per pipeline and stream: joins minus leaves over the closed windows, the base of the running
-- audience that a restart cannot rebuild from the open windows alone.
CREATE TABLE stream_checkpoints (
    pipeline           text   NOT NULL,
    stream_id          text   NOT NULL,
    closed_net_viewers bigint NOT NULL,
    PRIMARY KEY (pipeline, stream_id)
);
