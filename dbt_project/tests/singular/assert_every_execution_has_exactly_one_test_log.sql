-- Every canonical execution of the project becomes exactly one qTest test log, and every log comes from
-- one execution (cross-model: canonical.test_execution <-> qtest_mapping.qtest_test_logs).

with

executions as (

    select execution_id
    from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

logs as (

    select
        execution_id,
        count(*) as log_count
    from {{ ref('qtest_test_logs') }}
    where project_key = '{{ zephyr_project_key() }}'
    group by execution_id

)

select
    coalesce(executions.execution_id, logs.execution_id) as execution_id,
    coalesce(logs.log_count, 0) as log_count
from executions
full outer join logs
    on executions.execution_id = logs.execution_id
where
    executions.execution_id is null
    or logs.execution_id is null
    or logs.log_count <> 1
