-- Evaluation (综合评价, gis/evaluation.py): the weights of the composite score, two aggregates the
-- evaluation query needs, and the index it reads a period's cases through.

-- The composite score is 100 × Σ w·x / Σ w over x = closure_rate, on_time_rate, 1 − rework_rate and
-- 1 − extension_rate; each weight is named after its indicator. Settable here (an UPDATE), and per call.
create table score_weight (
    indicator text primary key
              check (indicator in ('closure_rate', 'on_time_rate', 'rework_rate', 'extension_rate')),
    weight    numeric not null check (weight >= 0)
);
insert into score_weight values ('closure_rate', 0.3), ('on_time_rate', 0.4), ('rework_rate', 0.2),
                                ('extension_rate', 0.1);

-- array_agg for real values that parallel workers can run side by side (array_agg cannot before
-- PostgreSQL 16), and the concatenation of such arrays: the 90th percentile of handling times is taken
-- from them, since percentile_cont, an ordered-set aggregate, rules out both hashing and parallel workers
-- and turned the evaluation of a month into a sort of a million rows.
create aggregate real_array_agg(real) (
    sfunc = array_append, stype = real[], combinefunc = array_cat, parallel = safe
);
create aggregate real_array_concat(real[]) (
    sfunc = array_cat, stype = real[], combinefunc = array_cat, parallel = safe
);

-- A case counts in a period when one of its times (reported, opened, last status change, due, closed)
-- falls in it: when its latest time is at or after the start and its earliest before the end. The key is
-- that latest time, so a period is one range of this index; and the columns the indicators read are
-- carried in it, so that the evaluation need not visit the table. An incident row is wide (text, geometry
-- and reporter come first, the case columns last): unpacking a million of them cost more than the rest of
-- the query. Measured (bench/bench_stats.py: 2,000,000 cases, the counts of one month of 1,000,000 at
-- street level, 2 busy cores): an OR of five index ranges (BitmapOr over reported_at, opened_at, a voided
-- status_changed_at, due_at, closed_at) 1.9 s, a parallel seq scan 1.4 s, this index-only scan 0.9 s.
create index incident_case_span_idx on incident ((greatest(reported_at, status_changed_at, opened_at, due_at,
                                                           closed_at)))
    include (reported_at, status_changed_at, opened_at, due_at, closed_at, handled_at, handling_h, reworks,
             extensions, district_id, street_id, community_id, grid_id, status, unit_kind, unit_code);

-- Escalations in a period, whatever became of their cases.
create index case_event_escalate_idx on case_event (at) where action = 'escalate';
