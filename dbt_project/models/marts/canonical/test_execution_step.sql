with

test_execution_steps as (

    select * from {{ ref('stg_zephyr__test_execution_steps') }}
    where project_key = '{{ zephyr_project_key() }}'
    -- offset 0: evaluate the view's jsonb casts once per row (not again in every join and column)
    offset 0

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_execution_steps.test_execution_step_id,
        test_execution_steps.test_execution_id,
        test_execution_steps.step_order,
        coalesce(test_execution_steps.step_description, '')::text as description,
        test_execution_steps.test_data::text as test_data,
        test_execution_steps.expected_result::text as expected_result,
        test_execution_steps.actual_result::text as actual_result,
        coalesce(statuses.status_name, '')::varchar as status,
        test_execution_steps.status_id,
        test_execution_steps.test_data_row_number,
        test_execution_steps.reflect_ref::text as reflect_ref,
        test_execution_steps.project_key::varchar as project_key,
        test_execution_steps.test_execution_step_key::varchar as test_execution_step_key,
        test_execution_steps.is_surrogate_id as is_surrogate_step_id,
        test_execution_steps._loaded_at
    from test_execution_steps
    left join statuses
        on test_execution_steps.status_id = statuses.status_id
    where test_execution_steps.test_execution_id is not null

)

select * from final
