-- One qTest test-step log per Zephyr step result, inside its test log: status through status_map,
-- actual result, and the case step it belongs to where that is certain.

with

test_execution_steps as (

    select * from {{ ref('test_execution_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_executions as (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_steps as (

    select * from {{ ref('test_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

status_map as (

    select * from {{ ref('status_map') }}
    where status_type = 'TEST_EXECUTION'

),

-- Zephyr flattens call-to-test steps into an execution's steps, so an execution step is known to be the
-- case's step of the same position only when the case has no call-to-test step.
case_step_counts as (

    select
        test_case_key,
        count(*) as step_count,
        count(*) filter (where step_type = 'call_to_test') as call_count
    from test_steps
    group by test_case_key

),

final as (

    select
        test_execution_steps.project_key::varchar as project_key,
        ({{ execution_source_key('test_executions.key', 'test_executions.execution_id') }}
            || '#' || test_execution_steps.step_order)::varchar as source_key,
        {{ execution_source_key('test_executions.key', 'test_executions.execution_id') }}::varchar
            as parent_source_key,
        test_execution_steps.test_execution_step_id,
        test_execution_steps.step_order,
        coalesce(status_map.qtest_name, nullif(test_execution_steps.status, ''))::varchar as status,
        test_execution_steps.status::varchar as zephyr_status,
        test_execution_steps.description,
        coalesce(test_execution_steps.expected_result, '')::text as expected_result,
        test_execution_steps.actual_result,
        test_execution_steps.test_data,
        (case
            when case_step_counts.call_count = 0
                and test_execution_steps.step_order <= case_step_counts.step_count
                then test_executions.test_case_key || '#' || test_execution_steps.step_order
        end)::varchar as test_step_source_key,
        test_execution_steps.step_order as load_order,
        (case
            when test_cases.test_case_id is null
                then 'its test log is not created (its test case is not in the project)'
            when test_executions.actual_end_date is null then 'its test log is not created (not executed yet)'
        end)::text as skip_reason,
        {{ payload_hash([
            "test_execution_steps.step_order",
            "coalesce(status_map.qtest_name, nullif(test_execution_steps.status, ''))",
            "test_execution_steps.description",
            "test_execution_steps.expected_result",
            "test_execution_steps.actual_result",
        ]) }}::varchar as payload_hash,
        test_execution_steps._loaded_at
    from test_execution_steps
    inner join test_executions
        on test_execution_steps.test_execution_id = test_executions.execution_id
    left join status_map
        on test_execution_steps.status = status_map.zephyr_name
    left join case_step_counts
        on test_executions.test_case_key = case_step_counts.test_case_key
    left join test_cases
        on test_executions.test_case_key = test_cases.key

)

select * from final
