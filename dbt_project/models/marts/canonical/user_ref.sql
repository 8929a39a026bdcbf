-- Every Atlassian accountId the project's data mentions, and where: the user map (people/user_map.csv)
-- must cover these, and qtest_mapping.unmapped lists the ones it does not.

with

test_cases as (

    select * from {{ ref('test_case') }}
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

custom_fields as (

    select * from {{ ref('custom_field') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and field_type = 'user'

),

mentions as (

    select
        project_key,
        owner_id as account_id,
        'TestCase' as object_type,
        'owner' as seen_as,
        key as object_key,
        _loaded_at
    from test_cases

    union all

    select
        project_key,
        owner_id as account_id,
        'TestCycle' as object_type,
        'owner' as seen_as,
        key as object_key,
        _loaded_at
    from test_cycles

    union all

    select
        project_key,
        owner_id as account_id,
        'TestPlan' as object_type,
        'owner' as seen_as,
        key as object_key,
        _loaded_at
    from test_plans

    union all

    -- One pass over the executions for both of their user fields.
    select
        test_executions.project_key,
        users.account_id,
        'TestExecution' as object_type,
        users.seen_as,
        coalesce(test_executions.key, test_executions.execution_id::text) as object_key,
        test_executions._loaded_at
    from test_executions
    cross join lateral (
        values
            ('executedById', test_executions.executed_by_id),
            ('assignedToId', test_executions.assigned_to_id)
    ) as users (seen_as, account_id)

    union all

    select
        project_key,
        field_value as account_id,
        object_type,
        'customFields.' || field_name as seen_as,
        object_key,
        _loaded_at
    from custom_fields

),

final as (

    select
        project_key::varchar as project_key,
        account_id::varchar as account_id,
        object_type::varchar as object_type,
        seen_as::varchar as seen_as,
        count(*)::bigint as object_count,
        min(object_key)::varchar as first_object_key,
        max(_loaded_at) as _loaded_at
    from mentions
    where account_id is not null and account_id <> ''
    group by project_key, account_id, object_type, seen_as

)

select * from final
