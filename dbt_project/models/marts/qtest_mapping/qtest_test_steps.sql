-- The qTest test steps of each test case, in order: inline steps (description + test data, expected),
-- call-to-test steps (called_test_case_source_key; the callee is created first, see
-- qtest_test_cases.load_order) and, for a plain or BDD case, its script as one step.

with

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_steps as (

    select * from {{ ref('test_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_step_parameters as (

    select * from {{ ref('test_step_parameter') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_scripts as (

    select * from {{ ref('test_script') }}
    where project_key = '{{ zephyr_project_key() }}'

),

parameters as (

    select
        step_id,
        jsonb_agg(
            jsonb_build_object('name', parameter_name, 'type', parameter_type, 'value', parameter_value)
            order by parameter_order
        ) as parameters
    from test_step_parameters
    group by step_id

),

steps as (

    select
        test_steps.project_key,
        test_steps.step_key as source_key,
        test_steps.test_case_key as parent_source_key,
        test_steps.step_id,
        test_steps.step_type,
        test_steps.step_order,
        case
            when test_steps.step_type = 'call_to_test'
                then 'Call to test ' || test_steps.called_test_case_key
            when nullif(test_steps.test_data, '') is not null
                then test_steps.description || '<br>Test data: ' || test_steps.test_data
            else test_steps.description
        end as description,
        coalesce(test_steps.expected_result, '') as expected,
        test_steps.test_data,
        test_steps.called_test_case_key as called_test_case_source_key,
        called.test_case_id is not null as is_called_test_case_in_project,
        coalesce(parameters.parameters, '[]'::jsonb) as parameters,
        case
            when test_steps.step_type = 'call_to_test' and called.test_case_id is null
                then 'calls ' || coalesce(test_steps.called_test_case_key, '(no key)')
                    || ', which is not a test case of this project: it must be migrated first (its own project)'
            when test_steps.step_type is null
                then 'the step has neither inline content nor a call; migrated as an empty step'
        end as mapping_issue,
        test_steps._loaded_at
    from test_steps
    inner join test_cases as callers
        on test_steps.test_case_id = callers.test_case_id
    left join test_cases as called
        on test_steps.called_test_case_key = called.key
    left join parameters
        on test_steps.step_id = parameters.step_id

),

-- Zephyr keeps either steps or a script; should a case have both, the script comes after its steps.
step_counts as (

    select
        test_case_key,
        max(step_order) as last_step_order
    from test_steps
    group by test_case_key

),

scripts as (

    select
        test_scripts.project_key,
        test_scripts.test_case_key || '#script' as source_key,
        test_scripts.test_case_key as parent_source_key,
        test_scripts.test_script_id as step_id,
        'script' as step_type,
        coalesce(step_counts.last_step_order, 0) + 1 as step_order,
        case
            when test_scripts.type = 'bdd' then replace(test_scripts.text, E'\n', '<br>')
            else test_scripts.text
        end as description,
        '' as expected,
        null as test_data,
        null as called_test_case_source_key,
        false as is_called_test_case_in_project,
        '[]'::jsonb as parameters,
        null as mapping_issue,
        test_scripts._loaded_at
    from test_scripts
    inner join test_cases
        on test_scripts.test_case_id = test_cases.test_case_id
    left join step_counts
        on test_scripts.test_case_key = step_counts.test_case_key

),

all_steps as (

    select * from steps
    union all
    select * from scripts

),

final as (

    select
        project_key::varchar as project_key,
        source_key::varchar as source_key,
        parent_source_key::varchar as parent_source_key,
        step_id,
        step_type::varchar as step_type,
        step_order::integer as step_order,
        description::text as description,
        expected::text as expected,
        test_data::text as test_data,
        called_test_case_source_key::varchar as called_test_case_source_key,
        is_called_test_case_in_project,
        parameters,
        step_order::integer as load_order,
        mapping_issue::text as mapping_issue,
        {{ payload_hash([
            "step_order",
            "description",
            "expected",
            "called_test_case_source_key",
            "parameters",
        ]) }}::varchar as payload_hash,
        _loaded_at
    from all_steps

)

select * from final
