-- One qTest test run per (test cycle, test case) pair that Zephyr executed; executions outside any cycle
-- of the project get runs in the project's "Ad-hoc executions" cycle. A pair with automated executions
-- to send is an automation run: qTest's bulk auto-test-logs endpoint finds a run by its cycle followed by
-- module_names (required, and made into modules in Test Design as well), so the run sits in one
-- sub-cycle of its cycle named var('automation_folder_name'), and module_names is that one name.
-- Executions of a test case that is not in the project (deleted in Zephyr after it ran) get a row with a
-- skip_reason: qTest has no run without a test case, so it is not created, nor are its logs.
-- An execution that has not run yet gets no log (qTest makes one only of a result): its values (the
-- properties its log would have had, its assignee and comment included, but its key and its executor)
-- go on the run; of several such executions of one run, the latest one's.

with

test_executions as (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('test_cycle') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

field_map as (

    select * from {{ ref('custom_field_map') }}
    where object_type = 'TestRun'

),

unrun_logs as (

    select * from {{ ref('qtest_test_logs') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and exe_end_date is null

),

-- The properties of each run's latest unrun execution, without its key and its executor (a run is not
-- executed by anyone; its assignee is the run's 'Assigned To').
unrun_properties as (

    select distinct on (unrun_logs.parent_source_key)
        unrun_logs.parent_source_key as run_source_key,
        (
            select coalesce(jsonb_agg(prop order by ordinality), '[]'::jsonb)
            from jsonb_array_elements(unrun_logs.properties) with ordinality as props (prop, ordinality)
            where prop ->> 'zephyr_field' not in ('key', 'executedById')
        ) as properties
    from unrun_logs
    order by unrun_logs.parent_source_key, unrun_logs.log_order desc

),

placed as (

    select
        test_executions.*,
        coalesce(test_cycles.key, 'adhoc:' || test_executions.project_key) as cycle_source_key,
        coalesce(test_executions.test_case_key, '?') as case_source_key
    from test_executions
    left join test_cycles
        on test_executions.test_cycle_id = test_cycles.test_cycle_id

),

runs as (

    select
        project_key,
        cycle_source_key,
        case_source_key,
        min(test_cycle_id) as test_cycle_id,
        count(*) as execution_count,
        count(*) filter (where automated and actual_end_date is not null) as automated_log_count,
        max(execution_id) as latest_execution_id,
        max(_loaded_at) as _loaded_at
    from placed
    group by project_key, cycle_source_key, case_source_key

),

placed_runs as (

    select
        runs.*,
        test_cases.test_case_id,
        test_cases.name as test_case_name,
        case
            when runs.automated_log_count > 0 and test_cases.test_case_id is not null
                then array[{{ sql_string(var('automation_folder_name')) }}]::varchar []
        end as automation_module_names
    from runs
    left join test_cases
        on runs.case_source_key = test_cases.key

),

final as (

    select
        runs.project_key::varchar as project_key,
        (runs.cycle_source_key || '|' || runs.case_source_key)::varchar as source_key,
        (case
            when runs.automation_module_names is not null
                then {{ automation_cycle_key('runs.cycle_source_key', 'runs.automation_module_names') }}
            else runs.cycle_source_key
        end)::varchar as parent_source_key,
        'test-cycle'::varchar as parent_type,
        runs.test_cycle_id,
        runs.case_source_key::varchar as test_case_source_key,
        runs.test_case_id,
        coalesce(nullif(runs.test_case_name, ''), runs.case_source_key)::varchar as name,
        (case
            when nullif(field_map.qtest_label, '') is not null
                then jsonb_build_array(jsonb_build_object(
                    'field_label', field_map.qtest_label,
                    'value', runs.cycle_source_key || '|' || runs.case_source_key,
                    'zephyr_field', 'key'
                ))
            else '[]'::jsonb
        end) || coalesce(unrun_properties.properties, '[]'::jsonb) as properties,
        runs.execution_count::integer as execution_count,
        runs.latest_execution_id,
        runs.automated_log_count::integer as automated_log_count,
        (case when runs.automation_module_names is not null then runs.cycle_source_key end)::varchar
            as automation_test_cycle_source_key,
        to_jsonb(runs.automation_module_names) as automation_module_names,
        0 as load_order,
        (case
            when runs.test_case_id is null
                then 'test case ' || runs.case_source_key || ' is not in the project (deleted in Zephyr?): no run can be created'
        end)::text as mapping_issue,
        (case
            when runs.test_case_id is null
                then 'its test case ' || runs.case_source_key || ' is not in the project (deleted in Zephyr?): '
                    || 'a qTest run needs one'
        end)::text as skip_reason,
        {{ payload_hash([
            "runs.cycle_source_key",
            "runs.case_source_key",
            "coalesce(nullif(runs.test_case_name, ''), runs.case_source_key)",
            "to_jsonb(runs.automation_module_names)",
            "coalesce(unrun_properties.properties, '[]'::jsonb)",
        ]) }}::varchar as payload_hash,
        runs._loaded_at
    from placed_runs as runs
    left join field_map
        on field_map.zephyr_field = 'key'
    left join unrun_properties
        on (runs.cycle_source_key || '|' || runs.case_source_key) = unrun_properties.run_source_key

)

select * from final
