"""The PostgreSQL store's tables: the DuckDB store's migrations (:mod:`fm_lab.store.schema`),
numbered alike, in PostgreSQL's types, plus what a shared server needs (cancel requests).

JSON payloads are ``text`` columns holding fm_lab's JSON (which keeps NaN and infinities, as
Python's ``json`` does; PostgreSQL's ``json`` type refuses them): cast with ``::jsonb`` to query
inside them.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        create table if not exists workflows (
            workflow_id text not null,
            version integer not null,
            hash text not null,
            name text,
            spec text not null,
            created_at timestamptz not null default now(),
            primary key (workflow_id, version)
        );
        create table if not exists runs (
            run_id text primary key,
            workflow_id text not null,
            workflow_version integer not null,
            status text not null,
            inputs text,
            outputs text,
            state text,
            error text,
            created_at timestamptz not null default now(),
            ended_at timestamptz,
            owner_pid integer,
            owner_host text,
            parent_run_id text,
            journal_seq bigint not null default 0
        );
        create index if not exists runs_status on runs (status, created_at);
        create index if not exists runs_created on runs (created_at);
        create table if not exists node_executions (
            run_id text not null,
            node_id text not null,
            seq bigint not null,
            node_type text,
            status text not null,
            attempts integer,
            input text,
            output text,
            error text,
            state_patch text,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double precision
        );
        create index if not exists node_executions_run on node_executions (run_id, node_id, seq);
        """,
    ),
    (
        2,
        """
        alter table node_executions add column if not exists leaf boolean;
        create table if not exists suspensions (
            run_id text not null,
            path text not null,
            node_id text,
            seq bigint not null,
            label text,
            payload text,
            resume_schema text,
            since timestamptz,
            expires_at timestamptz,
            on_timeout text,
            default_data text,
            resumed_at timestamptz,
            resumed_seq bigint,
            resume_data text
        );
        create index if not exists suspensions_run on suspensions (run_id, path);
        create index if not exists suspensions_waiting on suspensions (since)
            where resumed_at is null;
        create table if not exists steps (
            run_id text not null,
            path text not null,
            name text not null,
            seq bigint not null,
            result text,
            created_at timestamptz
        );
        create index if not exists steps_run on steps (run_id);
        """,
    ),
    (
        3,
        """
        alter table runs add column if not exists trace_id text;
        create table if not exists spans (
            trace_id text not null,
            span_id text not null,
            parent_span_id text,
            run_id text,
            kind text not null,
            name text,
            entity_id text,
            workflow_id text,
            node_id text,
            agent text,
            resource_id text,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double precision,
            status text,
            input text,
            output text,
            input_size bigint,
            output_size bigint,
            error text,
            attributes text,
            events text,
            model text,
            provider text,
            input_tokens bigint,
            output_tokens bigint,
            cached_tokens bigint,
            cache_write_tokens bigint,
            reasoning_tokens bigint,
            cost_usd double precision
        );
        create index if not exists spans_trace on spans (trace_id);
        create index if not exists spans_run on spans (run_id);
        create index if not exists spans_kind_started on spans (kind, started_at);
        """,
    ),
    (
        4,
        """
        create table if not exists memory_threads (
            thread_id text primary key,
            resource_id text,
            created_at timestamptz not null,
            updated_at timestamptz not null
        );
        create table if not exists memory_messages (
            message_id text primary key,
            thread_id text not null,
            resource_id text,
            sequence bigint not null,
            role text not null,
            content text,
            text text,
            tool_calls text,
            tool_call_id text,
            name text,
            created_at timestamptz not null
        );
        create index if not exists memory_messages_thread on memory_messages (thread_id, sequence);
        create table if not exists memory_working (
            scope text not null,
            key text not null,
            content text not null,
            version bigint not null,
            updated_at timestamptz not null,
            primary key (scope, key)
        );
        create table if not exists memory_summaries (
            thread_id text primary key,
            summary text not null,
            through_sequence bigint not null,
            updated_at timestamptz not null
        );
        """,
    ),
    (
        5,
        """
        create table if not exists batches (
            batch_id text primary key,
            kind text not null,
            target text,
            executor text,
            folder text,
            trace_id text not null,
            created_at timestamptz not null default now()
        );
        create table if not exists batch_items (
            batch_id text not null,
            item_key text not null,
            item_index integer,
            parameters text,
            status text not null,
            attempts integer not null default 0,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double precision,
            run_id text,
            trace_id text,
            span_id text,
            outputs text,
            error text,
            error_cell integer,
            output_path text,
            primary key (batch_id, item_key)
        );
        create or replace view all_runs as select * from runs;
        create or replace view all_node_executions as select * from node_executions;
        create or replace view all_spans as select * from spans;
        """,
    ),
    (
        6,
        """
        alter table node_executions add column if not exists cache_key text;
        alter table node_executions add column if not exists cached_from text;
        create index if not exists node_executions_cache on node_executions (cache_key);
        create or replace view all_node_executions as select * from node_executions;
        create table if not exists cancel_requests (
            run_id text primary key,
            requested_at timestamptz not null default now()
        );
        """,
    ),
]

AUDIT_APPEND_ONLY = """
create or replace function fm_lab_audit_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % is refused', tg_op
        using errcode = 'insufficient_privilege';
end
$$;
drop trigger if exists audit_log_append_only on audit_log;
create trigger audit_log_append_only
    before update or delete or truncate on audit_log
    for each statement execute function fm_lab_audit_append_only();
"""
"""Updates, deletes and truncates of the audit log are refused by the server, whoever
connects. A statement-level trigger, because ``truncate`` has no rows to fire on; only the
table's owner (``alter table ... disable trigger``, ``drop table``) can still get past it, and
the hash chain (:mod:`fm_lab.store.audit`) then shows it."""

MIGRATIONS.append((7, "alter table runs add column if not exists policy text;"))

MIGRATIONS.append(
    (
        8,
        """
        alter table runs add column if not exists started_by text;
        alter table runs add column if not exists workflow_hash text;
        alter table workflows add column if not exists saved_by text;
        alter table suspensions add column if not exists assignees text;
        alter table suspensions add column if not exists roles text;
        alter table suspensions add column if not exists resumed_by text;
        update runs set workflow_hash = w.hash from workflows w
            where w.workflow_id = runs.workflow_id and w.version = runs.workflow_version
            and runs.workflow_hash is null;
        create table if not exists audit_log (
            seq bigint primary key,
            acted_at timestamptz not null,
            actor text not null,
            action text not null,
            run_id text,
            path text,
            before text,
            after text,
            prev_hash text not null,
            hash text not null
        );
        create index if not exists audit_log_run on audit_log (run_id);
        """ + AUDIT_APPEND_ONLY,
    )
)

MIGRATIONS.append(
    (
        9,
        """
        create table if not exists store_settings (
            key text primary key,
            value text not null,
            set_by text not null,
            set_at timestamptz not null
        );
        """,
    )
)

MIGRATIONS.append(
    (
        10,
        """
        alter table runs add column if not exists forked_from text;
        alter table runs add column if not exists forked_at_node text;
        create or replace view all_runs as select * from runs;
        """,
    )
)

# evals (fm_lab.evals): datasets as numbered versions of their examples, experiments, one row
# per (experiment, variant, example) with what the target answered, and scores (of experiment
# rows, or of stored runs and traces: experiment_id null)
MIGRATIONS.append(
    (
        11,
        """
        create table if not exists eval_datasets (
            name text not null,
            version integer not null,
            created_at timestamptz not null,
            created_by text,
            description text,
            row_count integer not null,
            content_hash text not null,
            primary key (name, version)
        );
        create table if not exists eval_examples (
            dataset text not null,
            version integer not null,
            position integer not null,
            example_id text not null,
            inputs text,
            expected text,
            metadata text,
            source_run_id text,
            primary key (dataset, version, position)
        );
        create table if not exists eval_experiments (
            experiment_id text primary key,
            name text,
            dataset text,
            dataset_version integer,
            target text,
            variants text,
            scorers text,
            status text not null,
            created_at timestamptz not null,
            created_by text,
            finished_at timestamptz
        );
        create table if not exists eval_results (
            experiment_id text not null,
            variant text not null,
            position integer not null,
            example_id text,
            output text,
            error text,
            latency_ms double precision,
            input_tokens bigint,
            output_tokens bigint,
            cached_tokens bigint,
            cost_usd double precision,
            model text,
            run_id text,
            trace_id text,
            span_id text,
            primary key (experiment_id, variant, position)
        );
        create table if not exists eval_scores (
            experiment_id text,
            variant text,
            position integer,
            run_id text,
            trace_id text,
            span_id text,
            scorer text not null,
            value double precision,
            passed boolean,
            reason text,
            input_tokens bigint,
            output_tokens bigint,
            cost_usd double precision,
            scored_at timestamptz not null
        );
        create index if not exists eval_scores_experiment on eval_scores (experiment_id);
        create index if not exists eval_scores_trace on eval_scores (trace_id);
        """,
    )
)

MIGRATIONS.sort(key=lambda migration: migration[0])
LATEST_VERSION = MIGRATIONS[-1][0]
