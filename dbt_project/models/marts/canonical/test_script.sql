with

test_scripts as (

    select * from {{ ref('stg_zephyr__test_scripts') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

final as (

    select
        test_scripts.test_script_id,
        test_cases.test_case_id,
        test_scripts.test_case_key::varchar as test_case_key,
        (case
            when test_scripts.script_type in ('plain', 'bdd') then test_scripts.script_type
        end)::varchar as type,
        coalesce(test_scripts.script_text, '')::text as text,
        test_scripts.project_key::varchar as project_key,
        test_scripts.is_surrogate_id as is_surrogate_script_id,
        test_scripts._loaded_at
    from test_scripts
    left join test_cases
        on test_scripts.test_case_key = test_cases.test_case_key

)

select * from final
