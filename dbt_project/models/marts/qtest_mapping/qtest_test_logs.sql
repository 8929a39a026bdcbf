-- One qTest test log per Zephyr execution, on its run, oldest first (log_order): status through
-- status_map, exe_end = actualEndDate, exe_start = actualEndDate - executionTime, note = comment (+ the
-- executor's name and accountId when no qTest user maps it), environment / executor / custom fields as properties.
-- Automated executions are flagged for the bulk auto-test-logs endpoint.

with

-- not materialized: read twice, scanning the table again is far cheaper than spilling a wide copy.
test_executions as not materialized (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('test_cycle') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

custom_fields as (

    select * from {{ ref('custom_field') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestExecution'

),

status_map as (

    select * from {{ ref('status_map') }}
    where status_type = 'TEST_EXECUTION'

),

user_map as (

    select * from {{ ref('user_map') }}

),

-- Who each account is (Jira's display name, written by `zephyr-qtest users`), for a readable note.
user_names as (

    select * from {{ ref('user_names') }}

),

field_map as (

    select * from {{ ref('custom_field_map') }}
    where object_type = 'TestExecution'

),

-- The older versions qTest gets (replayed before the current one): a log of an execution that ran against
-- one goes on it (test_case_version_id; swagger, submitTestLog: without it the log goes on the latest
-- approved version).
older_versions as (

    select
        source_key,
        parent_source_key,
        version_number
    from {{ ref('qtest_test_case_versions') }}
    where project_key = '{{ zephyr_project_key() }}'

),

placed as not materialized (

    select
        test_executions.*,
        coalesce(test_cycles.key, 'adhoc:' || test_executions.project_key)
        || '|' || coalesce(test_executions.test_case_key, '?') as run_source_key
    from test_executions
    left join test_cycles
        on test_executions.test_cycle_id = test_cycles.test_cycle_id

),

----------  properties

-- Values stay narrow text (value_text + value_type) until they are aggregated: the JSON is built once,
-- inside the aggregate, and the rows sorted or hashed on the way are small.
builtin_values as (

    select
        test_executions.execution_id,
        builtin.zephyr_field,
        null as default_label,
        builtin.value_text,
        builtin.value_type
    from test_executions
    left join user_map as executors
        on test_executions.executed_by_id = executors.zephyr_account_id
    left join user_map as assignees
        on test_executions.assigned_to_id = assignees.zephyr_account_id
    cross join lateral (
        values
            (
                'key',
                {{ execution_source_key('test_executions.key', 'test_executions.execution_id') }},
                'text'
            ),
            ('environment', test_executions.environment, 'text'),
            -- Unmapped users are left out here (the note keeps the executor; unmapped lists both).
            ('executedById', executors.qtest_username, 'text'),
            ('assignedToId', assignees.qtest_username, 'text'),
            -- A log's comment is its note; an execution not run yet has no log: its run holds it (as the
            -- run's property, qtest_test_runs), since a qTest run has no note.
            ('comment', case when test_executions.actual_end_date is null then test_executions.comment end, 'text'),
            -- qTest logs have neither: fields of the run (a log takes the run's fields) hold them.
            ('estimatedTime', test_executions.estimated_time_ms::text, 'number'),
            -- Zephyr gives the Jira version's id only (no name): the id, as a number.
            ('jiraProjectVersion', test_executions.jira_project_version_id::text, 'number')
    ) as builtin (zephyr_field, value_text, value_type)
    where builtin.value_text is not null

),

custom_values as (

    select
        custom_fields.object_id as execution_id,
        'customFields.' || custom_fields.field_name as zephyr_field,
        custom_fields.field_name as default_label,
        coalesce(user_map.qtest_username, custom_fields.field_value) as value_text,
        custom_fields.field_type as value_type
    from custom_fields
    left join user_map
        on
            custom_fields.field_type = 'user'
            and custom_fields.field_value = user_map.zephyr_account_id
    where custom_fields.field_value is not null

),

all_values as (

    select * from builtin_values
    union all
    select * from custom_values

),

-- A row of custom_field_map decides the label (an empty label drops the field); without one, a custom
-- field keeps its Zephyr name and a built-in field is left out.
labelled_values as (

    select
        all_values.execution_id,
        all_values.zephyr_field,
        case
            when field_map.zephyr_field is not null then field_map.qtest_label
            else all_values.default_label
        end as field_label,
        all_values.value_text,
        {{ declared_value_type('all_values.value_type', 'field_map.zephyr_type') }} as value_type
    from all_values
    left join field_map
        on all_values.zephyr_field = field_map.zephyr_field

),

-- Sorted once by (execution, label, zephyr field): each execution's array is then built in that order
-- without a sort per execution (a million small sorts cost more than the one big one).
sorted_values as (

    select *
    from labelled_values
    where nullif(field_label, '') is not null
    order by execution_id, field_label, zephyr_field

),

properties as (

    select
        execution_id,
        {{ properties_array('field_label', 'value_text', 'value_type', 'zephyr_field', presorted=true) }}
            as properties
    from sorted_values
    group by execution_id

),

----------  logs

-- Oldest first within each run (by actual end date, then id), computed on narrow rows.
log_orders as (

    select
        execution_id,
        row_number() over (
            partition by run_source_key
            order by actual_end_date nulls last, execution_id
        ) as log_order
    from placed

),

logs as (

    select
        placed.project_key,
        {{ execution_source_key('placed.key', 'placed.execution_id') }} as source_key,
        placed.run_source_key as parent_source_key,
        placed.execution_id,
        placed.test_case_key as test_case_source_key,
        placed.test_case_version,
        older_versions.source_key as test_case_version_source_key,
        log_orders.log_order,
        coalesce(status_map.qtest_name, nullif(placed.status, '')) as status,
        placed.status as zephyr_status,
        coalesce(placed.actual_start_date, placed.actual_end_date) as exe_start_date,
        placed.actual_end_date as exe_end_date,
        nullif(concat_ws(
            '<br>',
            placed.comment,
            case
                when placed.executed_by_id is not null and executors.zephyr_account_id is null
                    then 'Executed by '
                        || coalesce(executor_names.display_name || ' (Zephyr user ' || placed.executed_by_id || ')',
                            'Zephyr user ' || placed.executed_by_id)
            end
        ), '') as note,
        placed.automated,
        coalesce(properties.properties, '[]'::jsonb) as properties,
        case
            when test_cases.test_case_id is null
                then 'its test case ' || coalesce(placed.test_case_key, '?')
                    || ' is not in the project (deleted in Zephyr?): no test run to log on'
            when placed.actual_end_date is null
                then 'not executed yet (no actual end date): qTest needs exe_start_date and exe_end_date'
        end as skip_reason,
        placed._loaded_at
    from placed
    inner join log_orders
        on placed.execution_id = log_orders.execution_id
    left join status_map
        on placed.status = status_map.zephyr_name
    left join user_map as executors
        on placed.executed_by_id = executors.zephyr_account_id
    left join user_names as executor_names
        on placed.executed_by_id = executor_names.zephyr_account_id
    left join properties
        on placed.execution_id = properties.execution_id
    left join test_cases
        on placed.test_case_key = test_cases.key
    left join older_versions
        on
            placed.test_case_key = older_versions.parent_source_key
            and placed.test_case_version = older_versions.version_number

),

final as (

    select
        project_key::varchar as project_key,
        source_key::varchar as source_key,
        parent_source_key::varchar as parent_source_key,
        execution_id,
        test_case_source_key::varchar as test_case_source_key,
        test_case_version,
        test_case_version_source_key::varchar as test_case_version_source_key,
        log_order::integer as log_order,
        status::varchar as status,
        zephyr_status::varchar as zephyr_status,
        exe_start_date,
        exe_end_date,
        note::text as note,
        automated,
        properties,
        log_order::integer as load_order,
        skip_reason::text as skip_reason,
        {{ payload_hash([
            "parent_source_key",
            "test_case_version_source_key",
            "status",
            "exe_start_date",
            "exe_end_date",
            "note",
            "automated",
            "properties",
        ]) }}::varchar as payload_hash,
        _loaded_at
    from logs

)

select * from final
