-- The qTest test steps of each test case, in order: inline steps (description + test data, expected),
-- call-to-test steps (linked_test_case_source_key; the callee is created first, see
-- qtest_test_cases.load_order) and, for a plain or BDD case, its script as one step.
-- qTest creates a case's steps with the case, so the cases that call each other in a loop cannot all be
-- linked: in each call cycle the calls from the case with the highest key to a case of the same cycle
-- with a lower (or the same) key are left unlinked, written in the step's description and named in
-- mapping_issue. The links left form no loop: each cycle keeps only calls from lower to higher keys.
-- qTest test steps have no custom fields and its calls take no parameters: a step's Zephyr custom fields
-- (by name) and a call's parameters ('Parameter <name>') end its description in a "Zephyr details" block
-- (the format of the details_block macro; lib/details_block.py reads it back for the proof).

with recursive

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

step_custom_fields as (

    select * from {{ ref('custom_field') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestStep'

),

----------  call cycles

call_edges as (

    select distinct
        test_steps.test_case_key as caller_key,
        test_steps.called_test_case_key as callee_key
    from test_steps
    inner join test_cases as callers
        on test_steps.test_case_id = callers.test_case_id
    inner join test_cases as callees
        on test_steps.called_test_case_key = callees.key
    where test_steps.step_type = 'call_to_test'

),

-- Which case reaches which through calls: each pair once (union), so the walk ends by itself, loops
-- included.
call_reach as (

    select
        caller_key as from_key,
        callee_key as to_key
    from call_edges

    union

    select
        call_reach.from_key,
        call_edges.callee_key as to_key
    from call_reach
    inner join call_edges
        on call_reach.to_key = call_edges.caller_key

),

-- The calls left unlinked: those on a loop (the callee reaches the caller back) from a case to one whose
-- key is not higher. Keys of one project differ only in their number: (length, key) is numeric order.
cut_calls as (

    select call_edges.*
    from call_edges
    inner join call_reach
        on
            call_edges.callee_key = call_reach.from_key
            and call_edges.caller_key = call_reach.to_key
    where (length(call_edges.caller_key), call_edges.caller_key) >= (length(call_edges.callee_key), call_edges.callee_key)

),

-- From each cut call back to its caller through the cycle, to name the cycle it closes.
cut_cycle_walk as (

    select
        caller_key,
        callee_key,
        callee_key as current_key,
        array[caller_key::text, callee_key::text] as key_path
    from cut_calls

    union all

    select
        cut_cycle_walk.caller_key,
        cut_cycle_walk.callee_key,
        call_edges.callee_key as current_key,
        cut_cycle_walk.key_path || call_edges.callee_key::text as key_path
    from cut_cycle_walk
    inner join call_edges
        on cut_cycle_walk.current_key = call_edges.caller_key
    inner join call_reach
        on
            call_edges.callee_key = call_reach.from_key
            and cut_cycle_walk.caller_key = call_reach.to_key
    where
        cut_cycle_walk.current_key <> cut_cycle_walk.caller_key
        and cardinality(cut_cycle_walk.key_path) <= {{ var('call_depth_cap') }}
        and (
            call_edges.callee_key = cut_cycle_walk.caller_key
            or not call_edges.callee_key = any(cut_cycle_walk.key_path)
        )

),

-- The shortest cycle each cut call closes (a cycle longer than call_depth_cap is named by its call).
cut_cycles as (

    select
        cut_calls.caller_key,
        cut_calls.callee_key,
        coalesce(
            (
                select array_to_string(cut_cycle_walk.key_path, ' -> ')
                from cut_cycle_walk
                where
                    cut_cycle_walk.caller_key = cut_calls.caller_key
                    and cut_cycle_walk.callee_key = cut_calls.callee_key
                    and cut_cycle_walk.current_key = cut_cycle_walk.caller_key
                order by cardinality(cut_cycle_walk.key_path), cut_cycle_walk.key_path
                limit 1
            ),
            cut_calls.caller_key || ' -> ' || cut_calls.callee_key || ' -> ... -> ' || cut_calls.caller_key
        ) as cycle_path
    from cut_calls

),

----------  steps

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

-- One line per value, as the details_block macro writes them (its labels are fixed; these are each
-- step's own): custom fields by name, then the call's parameters in order. A list is its items, joined.
detail_lines as (

    select
        object_id as step_id,
        0 as line_group,
        field_name as line_label,
        row_number() over (partition by object_id order by field_name) as line_order,
        case
            when field_type = 'multi_select'
                then (select string_agg(item, ', ') from jsonb_array_elements_text(field_value::jsonb) as item)
            else field_value
        end as line_value
    from step_custom_fields
    where field_value is not null

    union all

    select
        step_id,
        1 as line_group,
        'Parameter ' || parameter_name as line_label,
        parameter_order as line_order,
        coalesce(parameter_value, '') as line_value
    from test_step_parameters

),

details as (

    select
        step_id,
        '<p><b>{{ details_header() }}</b>' || string_agg(
            '<br>' || {{ html_escape('line_label') }} || ': ' || {{ html_escape('line_value') }},
            '' order by line_group, line_order
        ) || '</p>' as details_block
    from detail_lines
    where nullif(line_value, '') is not null
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
        coalesce(case
            when cut_cycles.cycle_path is not null
                then 'Call to test ' || test_steps.called_test_case_key
                    || ' (not linked: call cycle ' || cut_cycles.cycle_path || ')'
            when test_steps.step_type = 'call_to_test'
                then 'Call to test ' || test_steps.called_test_case_key
            when nullif(test_steps.test_data, '') is not null
                then test_steps.description || '<br>Test data: ' || test_steps.test_data
            else test_steps.description
        end, '') || coalesce(details.details_block, '') as description,
        coalesce(test_steps.expected_result, '') as expected,
        test_steps.test_data,
        test_steps.called_test_case_key as called_test_case_source_key,
        called.test_case_id is not null as is_called_test_case_in_project,
        case
            when
                test_steps.step_type = 'call_to_test'
                and called.test_case_id is not null
                and cut_cycles.cycle_path is null
                then test_steps.called_test_case_key
        end as linked_test_case_source_key,
        coalesce(parameters.parameters, '[]'::jsonb) as parameters,
        case
            when cut_cycles.cycle_path is not null
                then 'the call ' || test_steps.test_case_key || ' -> ' || test_steps.called_test_case_key
                    || ' is not linked in qTest: it closes the call cycle ' || cut_cycles.cycle_path
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
    left join details
        on test_steps.step_id = details.step_id
    left join cut_cycles
        on
            test_steps.step_type = 'call_to_test'
            and test_steps.test_case_key = cut_cycles.caller_key
            and test_steps.called_test_case_key = cut_cycles.callee_key

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
        null as linked_test_case_source_key,
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
        linked_test_case_source_key::varchar as linked_test_case_source_key,
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
