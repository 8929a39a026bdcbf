with

test_steps as (

    select * from {{ ref('stg_zephyr__test_steps') }}
    where project_key = '{{ zephyr_project_key() }}'
    -- offset 0: evaluate the view's jsonb casts once per row (not again in every join and column)
    offset 0

),

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_steps.step_id,
        test_cases.test_case_id,
        test_steps.step_order,
        -- A call-to-test step has no text of its own: '' keeps the step (and the NOT NULL of the seed).
        coalesce(test_steps.step_description, '')::text as description,
        test_steps.expected_result::text as expected_result,
        null::timestamp as created_at,
        null::timestamp as updated_at,
        test_steps.project_key::varchar as project_key,
        test_steps.step_key::varchar as step_key,
        test_steps.test_case_key::varchar as test_case_key,
        test_steps.step_type::varchar as step_type,
        test_steps.test_data::text as test_data,
        test_steps.called_test_case_key::varchar as called_test_case_key,
        test_steps.reflect_ref::text as reflect_ref,
        test_steps.is_surrogate_id as is_surrogate_step_id,
        test_steps._loaded_at
    from test_steps
    left join test_cases
        on test_steps.test_case_key = test_cases.test_case_key

)

select * from final
