with

test_steps as (

    select * from {{ ref('stg_zephyr__test_steps') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and step_type = 'call_to_test'

),

parameters as (

    select
        test_steps.step_id,
        parameter.ordinality::integer as parameter_order,
        parameter.value ->> 'name' as parameter_name,
        parameter.value ->> 'type' as parameter_type,
        parameter.value ->> 'value' as parameter_value,
        test_steps.project_key,
        test_steps.step_key,
        test_steps.test_case_key,
        test_steps.called_test_case_key,
        test_steps._loaded_at
    from test_steps
    cross join lateral jsonb_array_elements(test_steps.call_parameters) with ordinality as parameter

),

final as (

    select
        step_id,
        parameter_order,
        coalesce(parameter_name, '')::varchar as parameter_name,
        (case
            when parameter_type in ('MANUAL_INPUT', 'DEFAULT_VALUE') then parameter_type
        end)::varchar as parameter_type,
        parameter_value::text as parameter_value,
        project_key::varchar as project_key,
        step_key::varchar as step_key,
        test_case_key::varchar as test_case_key,
        called_test_case_key::varchar as called_test_case_key,
        _loaded_at
    from parameters

)

select * from final
