with

test_cycles as (

    select * from {{ ref('stg_zephyr__test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_cycles.test_cycle_id,
        test_cycles.project_id::varchar as project_id,
        test_cycles.folder_id,
        test_cycles.test_cycle_key::varchar as key,
        coalesce(test_cycles.test_cycle_name, '')::varchar as name,
        test_cycles.test_cycle_description::text as description,
        test_cycles.planned_start_date,
        test_cycles.planned_end_date,
        statuses.status_name::varchar as status,
        test_cycles.owner_account_id::varchar as owner_id,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        test_cycles.project_key::varchar as project_key,
        test_cycles.status_id,
        test_cycles.jira_project_version_id,
        test_cycles._loaded_at
    from test_cycles
    left join statuses
        on test_cycles.status_id = statuses.status_id
    where
        test_cycles.test_cycle_id is not null
        and test_cycles.test_cycle_key is not null

)

select * from final
