with

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'
    -- offset 0: evaluate the view's jsonb casts once per row (not again in every join and column)
    offset 0

),

priorities as (

    select * from {{ ref('stg_zephyr__priorities') }}
    where project_key = '{{ zephyr_project_key() }}'

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_scripts as (

    select * from {{ ref('stg_zephyr__test_scripts') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_cases.test_case_id,
        test_cases.project_id::varchar as project_id,
        test_cases.folder_id,
        test_cases.test_case_key::varchar as key,
        coalesce(test_cases.test_case_name, '')::varchar as name,
        test_cases.objective::text as objective,
        test_cases.precondition::text as precondition,
        test_cases.estimated_time_ms,
        priorities.priority_name::varchar as priority,
        statuses.status_name::varchar as status,
        test_cases.owner_account_id::varchar as owner_id,
        test_cases.created_on,
        null::timestamp as updated_at,
        test_cases.project_key::varchar as project_key,
        test_cases.priority_id,
        test_cases.status_id,
        test_cases.component_id,
        (case
            when test_cases.test_script_link_kind = 'step_by_step' then 'step_by_step'
            when test_scripts.script_type in ('plain', 'bdd') then test_scripts.script_type
        end)::varchar as test_script_type,
        test_cases._loaded_at
    from test_cases
    left join priorities
        on test_cases.priority_id = priorities.priority_id
    left join statuses
        on test_cases.status_id = statuses.status_id
    left join test_scripts
        on test_cases.test_case_key = test_scripts.test_case_key
    where
        test_cases.test_case_id is not null
        and test_cases.test_case_key is not null

)

select * from final
