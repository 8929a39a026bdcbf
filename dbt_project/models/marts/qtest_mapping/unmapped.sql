-- What this project's data contains that no map covers, or that cannot be migrated as it is: the to-do
-- list of a rehearsal. One row per (what, value) with how many objects it concerns.

with

test_cases as (

    select * from {{ ref('test_case') }}
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

custom_fields as (

    select * from {{ ref('custom_field') }}
    where project_key = '{{ zephyr_project_key() }}'

),

user_refs as (

    select * from {{ ref('user_ref') }}
    where project_key = '{{ zephyr_project_key() }}'

),

qtest_attachments as (

    select * from {{ ref('qtest_attachments') }}
    where project_key = '{{ zephyr_project_key() }}'

),

qtest_test_steps as (

    select * from {{ ref('qtest_test_steps') }}
    where project_key = '{{ zephyr_project_key() }}'

),

qtest_modules as (

    select * from {{ ref('qtest_modules') }}
    where project_key = '{{ zephyr_project_key() }}'

),

qtest_test_cycles as (

    select * from {{ ref('qtest_test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

qtest_test_logs as (

    select * from {{ ref('qtest_test_logs') }}
    where project_key = '{{ zephyr_project_key() }}'

),

status_map as (

    select * from {{ ref('status_map') }}

),

priority_map as (

    select * from {{ ref('priority_map') }}

),

user_map as (

    select * from {{ ref('user_map') }}

),

field_map as (

    select * from {{ ref('custom_field_map') }}

),

raw_counts as (

    {% set entities = [
        ('folders', 'stg_zephyr__folders', 'folder_id', 'folder'),
        ('test cases', 'stg_zephyr__test_cases', 'test_case_id', 'test_case'),
        ('test cycles', 'stg_zephyr__test_cycles', 'test_cycle_id', 'test_cycle'),
        ('test plans', 'stg_zephyr__test_plans', 'test_plan_id', 'test_plan'),
        ('test executions', 'stg_zephyr__test_executions', 'test_execution_id', 'test_execution'),
        ('attachments', 'stg_zephyr__attachments', 'attachment_id', 'attachment'),
    ] %}
    {% for label, staging, id_column, canonical in entities %}
    select
        '{{ label }}' as entity,
        (
            select count(*)
            from {{ ref(staging) }}
            where project_key = '{{ zephyr_project_key() }}'
        ) as raw_count,
        (
            select count(*)
            from {{ ref(canonical) }}
            where project_key = '{{ zephyr_project_key() }}'
        ) as canonical_count
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

problems as (

    -- Execution and step statuses without a qTest status (they keep their Zephyr name).
    select
        'execution_status' as what,
        coalesce(
            nullif(test_executions.status, ''), 'status id ' || test_executions.status_id, '(no status)'
        ) as value,
        count(*) as object_count
    from test_executions
    left join status_map
        on
            status_map.status_type = 'TEST_EXECUTION'
            and test_executions.status = status_map.zephyr_name
    where status_map.zephyr_name is null
    group by 1, 2

    union all

    select
        'execution_step_status' as what,
        coalesce(
            nullif(test_execution_steps.status, ''), 'status id ' || test_execution_steps.status_id, '(no status)'
        ) as value,
        count(*) as object_count
    from test_execution_steps
    left join status_map
        on
            status_map.status_type = 'TEST_EXECUTION'
            and test_execution_steps.status = status_map.zephyr_name
    where status_map.zephyr_name is null
    group by 1, 2

    union all

    select
        'test_case_status' as what,
        test_cases.status as value,
        count(*) as object_count
    from test_cases
    left join status_map
        on
            status_map.status_type = 'TEST_CASE'
            and test_cases.status = status_map.zephyr_name
    where
        test_cases.status is not null
        and status_map.zephyr_name is null
    group by 1, 2

    union all

    select
        'priority' as what,
        test_cases.priority as value,
        count(*) as object_count
    from test_cases
    left join priority_map
        on test_cases.priority = priority_map.zephyr_name
    where
        test_cases.priority is not null
        and priority_map.zephyr_name is null
    group by 1, 2

    union all

    select
        'user' as what,
        user_refs.account_id as value,
        sum(user_refs.object_count) as object_count
    from user_refs
    left join user_map
        on user_refs.account_id = user_map.zephyr_account_id
    where user_map.zephyr_account_id is null
    group by 1, 2

    union all

    select
        'custom_field' as what,
        custom_fields.object_type || ': ' || custom_fields.field_name as value,
        count(*) as object_count
    from custom_fields
    left join field_map
        on
            custom_fields.object_type = field_map.object_type
            and 'customFields.' || custom_fields.field_name = field_map.zephyr_field
    where
        custom_fields.object_type in ('TestCase', 'TestExecution')
        and field_map.zephyr_field is null
    group by 1, 2

    union all

    -- qTest has no field for these (cycles and plans carry no properties; a step's are in the "Zephyr
    -- details" block of its description): they stay in canonical.custom_field only.
    select
        'custom_field_not_migrated' as what,
        object_type || ': ' || field_name as value,
        count(*) as object_count
    from custom_fields
    where object_type not in ('TestCase', 'TestExecution', 'TestStep')
    group by 1, 2

    union all

    select
        'cross_project_call' as what,
        called_test_case_source_key as value,
        count(*) as object_count
    from qtest_test_steps
    where
        step_type = 'call_to_test'
        and not is_called_test_case_in_project
    group by 1, 2

    union all

    -- One call of each call-to-test cycle, left unlinked (qtest_test_steps), each named with its cycle.
    select
        'call_cycle_cut' as what,
        mapping_issue as value,
        count(*) as object_count
    from qtest_test_steps
    where
        step_type = 'call_to_test'
        and is_called_test_case_in_project
        and linked_test_case_source_key is null
    group by 1, 2

    union all

    -- Folders Zephyr gives a parent that the tree cannot use (a parent loop, a parent not in the
    -- project): each one by name, placed at the root.
    select
        'folder_placed_at_root' as what,
        'test-case folder ' || folder_id || ' "' || name || '": ' || mapping_issue as value,
        1 as object_count
    from qtest_modules
    where
        folder_id is not null
        and mapping_issue is not null

    union all

    select
        'folder_placed_at_root' as what,
        'test-cycle folder ' || zephyr_id || ' "' || name || '": ' || mapping_issue as value,
        1 as object_count
    from qtest_test_cycles
    where
        source_type = 'cycle_folder'
        and mapping_issue is not null

    union all

    select
        'attachment_skipped' as what,
        skip_reason as value,
        count(*) as object_count
    from qtest_attachments
    where skip_reason is not null
    group by 1, 2

    union all

    select
        'test_log_skipped' as what,
        skip_reason as value,
        count(*) as object_count
    from qtest_test_logs
    where skip_reason is not null
    group by 1, 2

    union all

    -- Executions of a test case that is not in the project (deleted in Zephyr after it ran), named.
    select
        'test_run_without_test_case' as what,
        coalesce(test_executions.test_case_key, '?') || ' (executions '
        || array_to_string(
            (array_agg(
                {{ execution_source_key('test_executions.key', 'test_executions.execution_id') }}
                order by test_executions.execution_id
            ))[1:20],
            ', '
        )
        || case when count(*) > 20 then ', and ' || (count(*) - 20) || ' more' else '' end
        || ')' as value,
        count(*) as object_count
    from test_executions
    left join test_cases
        on test_executions.test_case_key = test_cases.key
    where test_cases.test_case_id is null
    group by test_executions.test_case_key

    union all

    -- Enum values outside what the API documents (canonical holds null for them).
    select
        'unknown_value' as what,
        'folder.folderType = ' || folder_type as value,
        count(*) as object_count
    from {{ ref('stg_zephyr__folders') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and folder_type not in ('TEST_CASE', 'TEST_PLAN', 'TEST_CYCLE')
    group by 1, 2

    union all

    select
        'unknown_value' as what,
        'status.statusType = ' || status_type as value,
        count(*) as object_count
    from {{ ref('stg_zephyr__statuses') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and status_type not in ('TEST_CASE', 'TEST_PLAN', 'TEST_CYCLE', 'TEST_EXECUTION')
    group by 1, 2

    union all

    select
        'unknown_value' as what,
        'testscript.type = ' || script_type as value,
        count(*) as object_count
    from {{ ref('stg_zephyr__test_scripts') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and script_type not in ('plain', 'bdd')
    group by 1, 2

    union all

    -- Raw objects that could not be keyed (no id, no key, or an attachment whose owner is gone).
    select
        'not_in_canonical' as what,
        entity as value,
        raw_count - canonical_count as object_count
    from raw_counts
    where raw_count > canonical_count

),

final as (

    select
        '{{ zephyr_project_key() }}'::varchar as project_key,
        what::varchar as what,
        coalesce(value, '')::varchar as value,
        object_count::bigint as count
    from problems

)

select * from final
