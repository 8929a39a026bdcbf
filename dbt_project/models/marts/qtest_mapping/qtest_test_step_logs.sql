-- One qTest test-step log per Zephyr step result, inside its test log: status through status_map, actual
-- result, and the qTest step it is a result of.
--
-- Zephyr flattens an execution's steps: a call-to-test step becomes the called case's steps (themselves
-- flattened), and a data-driven execution repeats the whole list once per data row (testDataRowNumber).
-- So each result is placed by its position within its data row in the flattened list of the case's steps
-- as extracted (the called cases' steps as extracted too: the v2 API gives no older version's steps):
--   * a step of the case itself: a step log on that step (placement 'step');
--   * a step of a case it calls: a step log on the called case's step, with called_test_case_source_key
--     and parent_test_step_source_key (the calling step), as qTest's test_step_logs name called steps
--     (swagger, submitTestLog: "the called_test_case_id and parent_test_step_id must be included");
--   * otherwise (a step reached through a call inside a called case, or through a call qTest does not link,
--     a position after a call into another project, whose steps are not known here, or a position the case
--     no longer has): kept, readable, in the Zephyr details block of the log's note (placement 'note',
--     with note_reason). Never dropped.
-- The results of an execution that ran against an older version of its case are all in the note: its log
-- goes on that version (qtest_test_logs), which qTest holds without steps (Zephyr's v2 API gives none of
-- an older version), so no step log can name a step there.

with recursive

test_execution_steps as (

    select * from {{ ref('test_execution_step') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_executions as (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- The steps as qTest gets them (inline, call-to-test linked or not, a script as one step).
qtest_test_steps as (

    select * from {{ ref('qtest_test_steps') }}
    where project_key = '{{ zephyr_project_key() }}'

),

status_map as (

    select * from {{ ref('status_map') }}
    where status_type = 'TEST_EXECUTION'

),

-- The older versions qTest gets, whose logs hold no step logs (see above).
older_versions as (

    select
        parent_source_key,
        version_number
    from {{ ref('qtest_test_case_versions') }}
    where project_key = '{{ zephyr_project_key() }}'

),

----------  the flattened steps of each case, as Zephyr runs them

flattened as (

    select
        parent_source_key as root_case_key,
        array[step_order] as step_path,
        0 as depth,
        source_key as step_source_key,
        step_type,
        called_test_case_source_key,
        linked_test_case_source_key,
        is_called_test_case_in_project,
        -- the step of the root case this one is reached through (itself at depth 0)
        source_key as root_step_source_key,
        linked_test_case_source_key as root_linked_case_key,
        array[parent_source_key::text] as case_path,
        -- whether Zephyr runs the called case's steps in its place and this project knows them: a call to a
        -- case of the project that is not already on the path (a loop), within the depth cap
        (
            step_type = 'call_to_test'
            and is_called_test_case_in_project
            and coalesce(called_test_case_source_key <> parent_source_key, false)
        ) as expands
    from qtest_test_steps

    union all

    select
        flattened.root_case_key,
        flattened.step_path || callee_steps.step_order,
        flattened.depth + 1,
        callee_steps.source_key,
        callee_steps.step_type,
        callee_steps.called_test_case_source_key,
        callee_steps.linked_test_case_source_key,
        callee_steps.is_called_test_case_in_project,
        flattened.root_step_source_key,
        flattened.root_linked_case_key,
        flattened.case_path || callee_steps.parent_source_key::text,
        (
            callee_steps.step_type = 'call_to_test'
            and callee_steps.is_called_test_case_in_project
            and flattened.depth + 1 < {{ var('call_depth_cap') }}
            and not coalesce(
                callee_steps.called_test_case_source_key::text
                = any(flattened.case_path || callee_steps.parent_source_key::text),
                false
            )
        )
    from flattened
    inner join qtest_test_steps as callee_steps
        on flattened.called_test_case_source_key = callee_steps.parent_source_key
    where flattened.expands

),

-- What an execution runs: every step that is not a call, and each call whose steps are not known here
-- (into another project, in a loop of calls, or past the depth cap) as one position of unknown length.
flat_positions as (

    select
        flattened.*,
        row_number() over (partition by root_case_key order by step_path)::integer as flat_position,
        (step_type = 'call_to_test') as is_unknown_call
    from flattened
    where not expands

),

case_layouts as (

    select
        root_case_key,
        count(*)::integer as flat_step_count,
        min(flat_position) filter (where is_unknown_call) as first_unknown_position
    from flat_positions
    group by root_case_key

),

----------  results, placed

results as (

    select
        test_execution_steps.*,
        test_executions.test_case_key,
        test_executions.key as execution_key,
        test_executions.test_case_version,
        test_executions.actual_end_date,
        -- Zephyr numbers each data row's results from the list's start: the position within the row
        -- is the position in the flattened steps.
        row_number() over (
            partition by test_execution_steps.test_execution_id, test_execution_steps.test_data_row_number
            order by test_execution_steps.step_order
        )::integer as position_in_row
    from test_execution_steps
    inner join test_executions
        on test_execution_steps.test_execution_id = test_executions.execution_id

),

placed as (

    select
        results.*,
        flat_positions.step_source_key as flat_step_source_key,
        flat_positions.depth,
        flat_positions.root_step_source_key,
        flat_positions.root_linked_case_key,
        case
            when older_versions.version_number is not null
                then 'it ran against version ' || results.test_case_version || ' of the case, which its log is'
                    || ' on: qTest holds that version without steps (Zephyr''s API gives none of an older'
                    || ' version)'
            when results.position_in_row >= case_layouts.first_unknown_position
                then 'at or after a call whose steps are not known here (a case of another project, or a'
                    || ' loop of calls)'
            when flat_positions.flat_position is null
                then 'the case has ' || coalesce(case_layouts.flat_step_count, 0)
                    || ' steps now (called steps included): this result''s step is gone'
            when flat_positions.depth = 1 and flat_positions.root_linked_case_key is null
                then 'a step of ' || split_part(flat_positions.step_source_key, '#', 1)
                    || ', called by a step qTest does not link (see that step''s mapping issue)'
            when flat_positions.depth > 1
                then 'a step of ' || split_part(flat_positions.step_source_key, '#', 1)
                    || ', reached through a call inside a called case: qTest''s step logs name called steps'
                    || ' of the case''s own calls only'
        end as note_reason
    from results
    left join case_layouts
        on results.test_case_key = case_layouts.root_case_key
    left join flat_positions
        on
            results.test_case_key = flat_positions.root_case_key
            and results.position_in_row = flat_positions.flat_position
            and not flat_positions.is_unknown_call
    left join older_versions
        on
            results.test_case_key = older_versions.parent_source_key
            and results.test_case_version = older_versions.version_number

),

final as (

    select
        placed.project_key::varchar as project_key,
        ({{ execution_source_key('placed.execution_key', 'placed.test_execution_id') }}
            || '#' || placed.step_order)::varchar as source_key,
        {{ execution_source_key('placed.execution_key', 'placed.test_execution_id') }}::varchar
            as parent_source_key,
        placed.test_execution_step_id,
        placed.step_order,
        placed.test_data_row_number as data_row,
        placed.position_in_row,
        coalesce(status_map.qtest_name, nullif(placed.status, ''))::varchar as status,
        placed.status::varchar as zephyr_status,
        placed.description,
        coalesce(placed.expected_result, '')::text as expected_result,
        placed.actual_result,
        placed.test_data,
        (case when placed.note_reason is null then 'step' else 'note' end)::varchar as placement,
        placed.note_reason::text as note_reason,
        (case when placed.note_reason is null then placed.flat_step_source_key end)::varchar
            as test_step_source_key,
        (case when placed.note_reason is null and placed.depth = 1 then placed.root_linked_case_key end)::varchar
            as called_test_case_source_key,
        (case when placed.note_reason is null and placed.depth = 1 then placed.root_step_source_key end)::varchar
            as parent_test_step_source_key,
        placed.step_order as load_order,
        (case
            when test_cases.test_case_id is null
                then 'its test log is not created (its test case is not in the project)'
            when placed.actual_end_date is null
                then 'its test log is not created (not executed yet): a test log needs execution start and'
                    || ' end dates'
        end)::text as skip_reason,
        {{ payload_hash([
            "placed.step_order",
            "coalesce(status_map.qtest_name, nullif(placed.status, ''))",
            "placed.description",
            "placed.expected_result",
            "placed.actual_result",
            "placed.test_data",
            "placed.test_data_row_number",
            "placed.note_reason",
            "placed.flat_step_source_key",
        ]) }}::varchar as payload_hash,
        placed._loaded_at
    from placed
    left join status_map
        on placed.status = status_map.zephyr_name
    left join test_cases
        on placed.test_case_key = test_cases.key

)

select * from final
