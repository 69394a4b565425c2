"""The store's tables, as numbered migrations applied in order."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        create table if not exists workflows (
            workflow_id varchar not null,
            version integer not null,
            hash varchar not null,
            name varchar,
            spec json not null,
            created_at timestamptz not null default current_timestamp,
            primary key (workflow_id, version)
        );
        create table if not exists runs (
            run_id varchar primary key,
            workflow_id varchar not null,
            workflow_version integer not null,
            status varchar not null,
            inputs json,
            outputs json,
            state json,
            error json,
            created_at timestamptz not null default current_timestamp,
            ended_at timestamptz,
            owner_pid integer,
            owner_host varchar,
            parent_run_id varchar,
            journal_seq bigint not null default 0
        );
        create table if not exists node_executions (
            run_id varchar not null,
            node_id varchar not null,
            seq bigint not null,
            node_type varchar,
            status varchar not null,
            attempts integer,
            input json,
            output json,
            error json,
            state_patch json,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double
        );
        create index if not exists node_executions_run on node_executions (run_id);
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        """
        alter table node_executions add column if not exists leaf boolean;
        create table if not exists suspensions (
            run_id varchar not null,
            path varchar not null,
            node_id varchar,
            seq bigint not null,
            label varchar,
            payload json,
            resume_schema json,
            since timestamptz,
            expires_at timestamptz,
            on_timeout varchar,
            default_data json,
            resumed_at timestamptz,
            resumed_seq bigint,
            resume_data json
        );
        create index if not exists suspensions_run on suspensions (run_id);
        create table if not exists steps (
            run_id varchar not null,
            path varchar not null,
            name varchar not null,
            seq bigint not null,
            result json,
            created_at timestamptz
        );
        create index if not exists steps_run on steps (run_id);
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        """
        alter table runs add column if not exists trace_id varchar;
        create table if not exists spans (
            trace_id varchar not null,
            span_id varchar not null,
            parent_span_id varchar,
            run_id varchar,
            kind varchar not null,
            name varchar,
            entity_id varchar,
            workflow_id varchar,
            node_id varchar,
            agent varchar,
            resource_id varchar,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double,
            status varchar,
            input json,
            output json,
            input_size bigint,
            output_size bigint,
            error json,
            attributes json,
            events json,
            model varchar,
            provider varchar,
            input_tokens bigint,
            output_tokens bigint,
            cached_tokens bigint,
            cache_write_tokens bigint,
            reasoning_tokens bigint,
            cost_usd double
        );
        """,
    )
)

MIGRATIONS.append(
    (
        4,
        """
        create table if not exists memory_threads (
            thread_id varchar primary key,
            resource_id varchar,
            created_at timestamptz not null,
            updated_at timestamptz not null
        );
        create table if not exists memory_messages (
            message_id varchar primary key,
            thread_id varchar not null,
            resource_id varchar,
            sequence bigint not null,
            role varchar not null,
            content json,
            text varchar,
            tool_calls json,
            tool_call_id varchar,
            name varchar,
            created_at timestamptz not null
        );
        create index if not exists memory_messages_thread on memory_messages (thread_id, sequence);
        create table if not exists memory_working (
            scope varchar not null,
            key varchar not null,
            content varchar not null,
            version bigint not null,
            updated_at timestamptz not null,
            primary key (scope, key)
        );
        create table if not exists memory_summaries (
            thread_id varchar primary key,
            summary varchar not null,
            through_sequence bigint not null,
            updated_at timestamptz not null
        );
        """,
    )
)

MIGRATIONS.append(
    (
        5,
        """
        create table if not exists batches (
            batch_id varchar primary key,
            kind varchar not null,
            target varchar,
            executor varchar,
            folder varchar,
            trace_id varchar not null,
            created_at timestamptz not null default current_timestamp
        );
        create table if not exists batch_items (
            batch_id varchar not null,
            item_key varchar not null,
            item_index integer,
            parameters json,
            status varchar not null,
            attempts integer not null default 0,
            started_at timestamptz,
            ended_at timestamptz,
            duration_ms double,
            run_id varchar,
            trace_id varchar,
            span_id varchar,
            outputs json,
            error json,
            error_cell integer,
            output_path varchar,
            primary key (batch_id, item_key)
        );
        create or replace view all_runs as select * from runs;
        create or replace view all_node_executions as select * from node_executions;
        create or replace view all_spans as select * from spans;
        """,
    )
)

MIGRATIONS.append(
    (
        6,
        """
        alter table node_executions add column if not exists cache_key varchar;
        alter table node_executions add column if not exists cached_from json;
        create index if not exists node_executions_cache on node_executions (cache_key);
        """,
    )
)

MIGRATIONS.append(
    (
        7,
        """
        alter table runs add column if not exists policy varchar;
        """,
    )
)

# audit_log has no primary key or index in DuckDB (an ART index is maintained on every commit
# and checkpoint; the log is read whole or scanned by zone maps): seq is unique because one
# process writes the file and, in it, appends are serialised (duckdb_store._audit_lock); a
# duplicate would break the hash chain, which fm_lab.audit(verify=True) reports. A server
# store declares ``seq bigint primary key`` instead.
MIGRATIONS.append(
    (
        8,
        """
        alter table runs add column if not exists started_by varchar;
        alter table runs add column if not exists workflow_hash varchar;
        alter table workflows add column if not exists saved_by varchar;
        alter table suspensions add column if not exists assignees json;
        alter table suspensions add column if not exists roles json;
        alter table suspensions add column if not exists resumed_by varchar;
        update runs set workflow_hash = w.hash from workflows w
            where w.workflow_id = runs.workflow_id and w.version = runs.workflow_version
            and runs.workflow_hash is null;
        create table if not exists audit_log (
            seq bigint not null,
            acted_at timestamptz not null,
            actor varchar not null,
            action varchar not null,
            run_id varchar,
            path varchar,
            before json,
            after json,
            prev_hash varchar not null,
            hash varchar not null
        );
        """,
    )
)

MIGRATIONS.append(
    (
        9,
        """
        create table if not exists store_settings (
            key varchar primary key,
            value json not null,
            set_by varchar not null,
            set_at timestamptz not null
        );
        """,
    )
)

MIGRATIONS.append(
    (
        10,
        """
        alter table runs add column if not exists forked_from varchar;
        alter table runs add column if not exists forked_at_node varchar;
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
            name varchar not null,
            version integer not null,
            created_at timestamptz not null,
            created_by varchar,
            description varchar,
            row_count integer not null,
            content_hash varchar not null,
            primary key (name, version)
        );
        create table if not exists eval_examples (
            dataset varchar not null,
            version integer not null,
            position integer not null,
            example_id varchar not null,
            inputs json,
            expected json,
            metadata json,
            source_run_id varchar
        );
        create table if not exists eval_experiments (
            experiment_id varchar primary key,
            name varchar,
            dataset varchar,
            dataset_version integer,
            target varchar,
            variants json,
            scorers json,
            status varchar not null,
            created_at timestamptz not null,
            created_by varchar,
            finished_at timestamptz
        );
        create table if not exists eval_results (
            experiment_id varchar not null,
            variant varchar not null,
            position integer not null,
            example_id varchar,
            output json,
            error json,
            latency_ms double,
            input_tokens bigint,
            output_tokens bigint,
            cached_tokens bigint,
            cost_usd double,
            model varchar,
            run_id varchar,
            trace_id varchar,
            span_id varchar
        );
        create table if not exists eval_scores (
            experiment_id varchar,
            variant varchar,
            position integer,
            run_id varchar,
            trace_id varchar,
            span_id varchar,
            scorer varchar not null,
            value double,
            passed boolean,
            reason varchar,
            input_tokens bigint,
            output_tokens bigint,
            cost_usd double,
            scored_at timestamptz not null
        );
        """,
    )
)

TEAMS_VERSION = 8  # who did what: started_by, saved_by, resumed_by, assignees, audit_log
VIEWS_VERSION = 5  # the all_* views the query functions read
POLICY_VERSION = 7  # runs.policy
SETTINGS_VERSION = 9  # store_settings (fm_lab.store.settings)
FORK_VERSION = 10  # runs.forked_from, runs.forked_at_node (fm_lab.engine.fork)
EVALS_VERSION = 11  # eval_* tables (fm_lab.evals)

MIGRATIONS.sort(key=lambda migration: migration[0])  # versions may land out of order
LATEST_VERSION = MIGRATIONS[-1][0]
