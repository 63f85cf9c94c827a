-- Room on every page of the results for the next version of its rows: an open window's row is
-- rewritten at each commit, and with free space on its page (and no indexed column changed)
-- PostgreSQL updates it in place (a HOT update), without new entries in either index.
-- It applies to pages written from now on; `VACUUM FULL stream_metrics_minute` rewrites the old.
ALTER TABLE stream_metrics_minute SET (fillfactor = 70);
ALTER TABLE stream_state SET (fillfactor = 70);
