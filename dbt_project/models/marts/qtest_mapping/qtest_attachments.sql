-- Zephyr attachments -> qTest blob-handles on the object that receives their owner: test case, test
-- step, test log (execution), test-step log (execution step), release (a plan, when plans_as = release).
-- qTest cannot attach files to test cycles (nor to plans migrated as cycles), and refuses files over
-- 50 MB: those rows carry a skip_reason and are not uploaded. The bytes stay in canonical.attachment.

with

attachments as (

    select * from {{ ref('attachment') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- not materialized: read twice, scanning the table again is far cheaper than spilling a wide copy.
test_executions as not materialized (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_execution_steps as (

    select * from {{ ref('test_execution_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

owned as (

    select
        attachments.*,
        case attachments.related_type
            when 'TestCase' then 'test-cases'
            when 'TestStep' then 'test-steps'
            when 'TestExecution' then 'test-logs'
            when 'TestExecutionStep' then 'test-step-logs'
            when 'TestPlan' then {% if var('plans_as') == 'release' %}'releases'{% else %}null{% endif %}
        end as qtest_object_type,
        case attachments.related_type
            when 'TestCase' then attachments.related_key
            when 'TestStep' then attachments.related_key
            when 'TestPlan' then attachments.related_key
            when 'TestCycle' then attachments.related_key
            when 'TestExecution'
                then {{ execution_source_key('executions.key', 'executions.execution_id') }}
            when 'TestExecutionStep'
                then {{ execution_source_key('step_executions.key', 'step_executions.execution_id') }}
                    || '#' || test_execution_steps.step_order
        end as owner_source_key,
        coalesce(executions.actual_end_date, step_executions.actual_end_date) is null
        and attachments.related_type in ('TestExecution', 'TestExecutionStep') as is_owner_log_skipped,
        executed_cases.test_case_id is null
        and coalesce(executions.execution_id, step_executions.execution_id) is not null
            as is_owner_case_missing
    from attachments
    left join test_executions as executions
        on
            attachments.related_type = 'TestExecution'
            and attachments.related_id = executions.execution_id
    left join test_execution_steps
        on
            attachments.related_type = 'TestExecutionStep'
            and attachments.related_id = test_execution_steps.test_execution_step_id
    left join test_executions as step_executions
        on test_execution_steps.test_execution_id = step_executions.execution_id
    left join test_cases as executed_cases
        on coalesce(executions.test_case_key, step_executions.test_case_key) = executed_cases.key

),

final as (

    select
        project_key::varchar as project_key,
        attachment_key::varchar as source_key,
        owner_source_key::varchar as parent_source_key,
        attachment_id,
        related_type::varchar as zephyr_owner_type,
        qtest_object_type::varchar as qtest_object_type,
        owner_source_key::varchar as owner_source_key,
        coalesce(nullif(attachment_name, ''), 'attachment-' || attachment_id)::varchar as name,
        coalesce(content_type, 'application/octet-stream')::varchar as content_type,
        size_bytes,
        sha256,
        (case
            when related_type = 'TestCycle'
                then 'qTest test cycles cannot hold attachments'
            when related_type = 'TestPlan' and qtest_object_type is null
                then 'test plans become qTest test cycles (plans_as), which cannot hold attachments'
            when owner_source_key is null
                then 'its owner is not in the project'
            when is_owner_case_missing
                then 'its test log is not created (the execution''s test case is not in the project)'
            when is_owner_log_skipped
                then 'its test log is not created (the execution has no end date)'
            when size_bytes > {{ var('attachment_max_bytes') }}
                then 'larger than ' || {{ var('attachment_max_bytes') }} || ' bytes (qTest''s upload limit)'
        end)::text as skip_reason,
        0 as load_order,
        {{ payload_hash([
            "qtest_object_type",
            "owner_source_key",
            "coalesce(nullif(attachment_name, ''), 'attachment-' || attachment_id)",
            "coalesce(content_type, 'application/octet-stream')",
            "sha256",
        ]) }}::varchar as payload_hash,
        _loaded_at
    from owned

)

select * from final
