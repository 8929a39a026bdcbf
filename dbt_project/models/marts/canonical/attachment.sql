with

attachments as (

    select * from {{ ref('stg_zephyr__attachments') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- Owners are resolved through the canonical tables (already this project's rows, keyed and indexed).
test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_steps as (

    select * from {{ ref('test_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('test_cycle') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_plans as (

    select * from {{ ref('test_plan') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_executions as (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_execution_steps as (

    select * from {{ ref('test_execution_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

api_base_urls as (

    select
        project_key,
        min(api_base_url) as api_base_url
    from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'
    group by project_key

),

owners_resolved as (

    select
        attachments.*,
        case attachments.related_type
            when 'TestCase' then test_cases.test_case_id
            when 'TestStep' then attachments.owner_step_id
            when 'TestCycle' then test_cycles.test_cycle_id
            when 'TestPlan' then test_plans.test_plan_id
            when 'TestExecution' then test_executions.execution_id
            when 'TestExecutionStep' then attachments.owner_step_id
        end as related_id,
        case attachments.related_type
            when 'TestCase' then test_cases.key
            when 'TestStep' then test_steps.step_key
            when 'TestCycle' then test_cycles.key
            when 'TestPlan' then test_plans.key
            when 'TestExecution' then coalesce(test_executions.key, attachments.owner_ref)
            when 'TestExecutionStep' then test_execution_steps.test_execution_step_key
        end as related_key,
        api_base_urls.api_base_url
    from attachments
    left join test_cases
        on
            attachments.related_type = 'TestCase'
            and attachments.owner_ref = test_cases.key
    left join test_steps
        on
            attachments.related_type = 'TestStep'
            and attachments.owner_step_id = test_steps.step_id
    left join test_cycles
        on
            attachments.related_type = 'TestCycle'
            and attachments.owner_ref = test_cycles.key
    left join test_plans
        on
            attachments.related_type = 'TestPlan'
            and attachments.owner_ref = test_plans.key
    left join test_executions
        on
            attachments.related_type = 'TestExecution'
            and attachments.owner_ref = test_executions.execution_id::text
    left join test_execution_steps
        on
            attachments.related_type = 'TestExecutionStep'
            and attachments.owner_step_id = test_execution_steps.test_execution_step_id
    left join api_base_urls
        on attachments.project_key = api_base_urls.project_key

),

final as (

    select
        attachment_id,
        related_type::varchar as related_type,
        related_id,
        coalesce(attachment_name, '')::varchar as attachment_name,
        content as attachment_blob,
        (coalesce(api_base_url || '/', '') || attachment_key)::varchar as attachment_url,
        null::timestamp as created_at,
        project_key::varchar as project_key,
        attachment_key::varchar as attachment_key,
        owner_path::varchar as owner_path,
        related_key::varchar as related_key,
        content_type::varchar as content_type,
        size_bytes,
        sha256::varchar as sha256,
        _loaded_at
    from owners_resolved
    where
        attachment_id is not null
        and related_type is not null
        and related_id is not null

)

select * from final
