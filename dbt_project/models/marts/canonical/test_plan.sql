with

test_plans as (

    select * from {{ ref('stg_zephyr__test_plans') }}
    where project_key = '{{ zephyr_project_key() }}'

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_plans.test_plan_id,
        test_plans.project_id::varchar as project_id,
        test_plans.folder_id,
        test_plans.test_plan_key::varchar as key,
        coalesce(test_plans.test_plan_name, '')::varchar as name,
        test_plans.objective::text as objective,
        statuses.status_name::varchar as status,
        test_plans.owner_account_id::varchar as owner_id,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        test_plans.project_key::varchar as project_key,
        test_plans.status_id,
        test_plans._loaded_at
    from test_plans
    left join statuses
        on test_plans.status_id = statuses.status_id
    where
        test_plans.test_plan_id is not null
        and test_plans.test_plan_key is not null

)

select * from final
