with

test_executions as (

    select * from {{ ref('stg_zephyr__test_executions') }}
    where project_key = '{{ zephyr_project_key() }}'
    -- offset 0: evaluate the view's jsonb casts once per row (not again in every join and column)
    offset 0

),

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('stg_zephyr__test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

environments as (

    select * from {{ ref('stg_zephyr__environments') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_executions.test_execution_id as execution_id,
        test_executions.test_cycle_id,
        test_cases.test_case_id,
        coalesce(statuses.status_name, '')::varchar as status,
        test_executions.executed_by_id::varchar as executed_by_id,
        test_executions.assigned_to_id::varchar as assigned_to_id,
        test_executions.execution_time_ms,
        test_executions.actual_end_date,
        environments.environment_name::varchar as environment,
        test_executions.execution_comment::text as comment,
        coalesce(test_executions.is_automated, false) as automated,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        test_executions.project_key::varchar as project_key,
        test_executions.project_id::varchar as project_id,
        test_executions.test_execution_key::varchar as key,
        test_cycles.test_cycle_key::varchar as test_cycle_key,
        test_executions.test_case_key::varchar as test_case_key,
        test_executions.test_case_version,
        test_executions.test_case_version_id,
        test_executions.status_id,
        test_executions.environment_id,
        test_executions.estimated_time_ms,
        test_executions.jira_project_version_id,
        test_executions.actual_start_date,
        test_executions._loaded_at
    from test_executions
    left join test_cases
        on test_executions.test_case_key = test_cases.test_case_key
    left join test_cycles
        on test_executions.test_cycle_id = test_cycles.test_cycle_id
    left join statuses
        on test_executions.status_id = statuses.status_id
    left join environments
        on test_executions.environment_id = environments.environment_id
    where test_executions.test_execution_id is not null

)

select * from final
