-- Zephyr test cases -> qTest test cases: name, description (the objective), precondition, and properties
-- as {field_label, value} pairs that the loader resolves by field LABEL (and allowed value) through
-- /settings/test-cases/fields. Callees of call-to-test steps come first: load_order is the length of the
-- longest chain of linked calls below the case (qtest_test_steps leaves one call of every call cycle
-- unlinked, so the chains end).

with recursive

test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

folders as (

    select * from {{ ref('folder') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and type = 'TEST_CASE'

),

labels as (

    select * from {{ ref('label') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestCase'

),

custom_fields as (

    select * from {{ ref('custom_field') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestCase'

),

issue_links as (

    select * from {{ ref('issue_link') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestCase'

),

web_links as (

    select * from {{ ref('web_link') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestCase'

),

test_steps as (

    select * from {{ ref('test_step') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and step_type = 'call_to_test'

),

-- Cases Zephyr ran by automation: "Automation" = Yes in qTest, beside their Automation Content.
automated_cases as (

    select distinct test_case_key
    from {{ ref('test_execution') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and automated

),

qtest_test_steps as (

    select * from {{ ref('qtest_test_steps') }}
    where project_key = '{{ zephyr_project_key() }}'

),

priority_map as (

    select * from {{ ref('priority_map') }}

),

status_map as (

    select * from {{ ref('status_map') }}
    where status_type = 'TEST_CASE'

),

user_map as (

    select * from {{ ref('user_map') }}

),

field_map as (

    select * from {{ ref('custom_field_map') }}
    where object_type = 'TestCase'

),

----------  properties (the rule older versions follow too: macros/test_case_properties.sql)

property_cases as (

    select
        test_case_id as object_id,
        key,
        priority,
        status,
        owner_id,
        component_id,
        estimated_time_ms,
        created_on
    from test_cases

),

{{ test_case_properties('property_cases') }},

----------  call-to-test order

call_edges as (

    select distinct
        parent_source_key as caller_key,
        linked_test_case_source_key as callee_key
    from qtest_test_steps
    where linked_test_case_source_key is not null

),

-- The calls left unlinked to break a call cycle, named on their caller.
cut_calls as (

    select
        parent_source_key as test_case_key,
        string_agg(distinct mapping_issue, '; ') as mapping_issue
    from qtest_test_steps
    where
        step_type = 'call_to_test'
        and is_called_test_case_in_project
        and linked_test_case_source_key is null
    group by parent_source_key

),

-- Every call chain below each case, stopped at call_depth_cap (and at a loop, which the linked calls
-- never hold: the guard keeps a mistake from hanging the build).
call_walk as (

    select
        caller_key as origin_key,
        callee_key as current_key,
        1 as depth,
        array[caller_key::text, callee_key::text] as key_path
    from call_edges

    union all

    select
        call_walk.origin_key,
        call_edges.callee_key as current_key,
        call_walk.depth + 1 as depth,
        call_walk.key_path || call_edges.callee_key::text as key_path
    from call_walk
    inner join call_edges
        on call_walk.current_key = call_edges.caller_key
    where
        call_walk.depth < {{ var('call_depth_cap') }}
        and not call_edges.callee_key = any(call_walk.key_path)

),

call_loops as (

    select distinct call_walk.origin_key
    from call_walk
    inner join call_edges
        on call_walk.current_key = call_edges.caller_key
    where call_edges.callee_key = any(call_walk.key_path)

),

call_depth_capped as (

    select distinct call_walk.origin_key
    from call_walk
    inner join call_edges
        on call_walk.current_key = call_edges.caller_key
    where
        call_walk.depth >= {{ var('call_depth_cap') }}
        and not call_edges.callee_key = any(call_walk.key_path)

),

call_depths as (

    select
        origin_key,
        max(depth) as call_depth
    from call_walk
    group by origin_key

),

callees as (

    select
        test_case_key,
        jsonb_agg(distinct called_test_case_key) as called_source_keys
    from test_steps
    where called_test_case_key is not null
    group by test_case_key

),

----------  steps

steps as (

    select
        parent_source_key,
        count(*) as step_count,
        md5(string_agg(payload_hash, ',' order by step_order, source_key)) as steps_hash
    from qtest_test_steps
    group by parent_source_key

),

final as (

    select
        test_cases.project_key::varchar as project_key,
        test_cases.key::varchar as source_key,
        (case when folders.folder_id is not null then 'folder:' || folders.folder_id end)::varchar
            as parent_source_key,
        test_cases.test_case_id,
        coalesce(nullif(test_cases.name, ''), test_cases.key)::varchar as name,
        test_cases.objective::text as description,
        test_cases.precondition::text as precondition,
        coalesce(properties.properties, '[]'::jsonb) as properties,
        test_cases.test_script_type::varchar as test_script_type,
        coalesce(steps.step_count, 0)::integer as step_count,
        coalesce(callees.called_source_keys, '[]'::jsonb) as called_test_case_source_keys,
        coalesce(call_depths.call_depth, 0)::integer as load_order,
        (case
            when cut_calls.test_case_key is not null
                then cut_calls.mapping_issue
            when call_loops.origin_key is not null
                then 'its call-to-test chain contains a loop: one call of the loop must be left out in qTest'
            when call_depth_capped.origin_key is not null
                then 'call-to-test chain deeper than call_depth_cap; load_order is a lower bound'
            when test_cases.folder_id is not null and folders.folder_id is null
                then 'folder ' || test_cases.folder_id || ' is not a test-case folder of the project; no module'
        end)::text as mapping_issue,
        {{ payload_hash([
            "case when folders.folder_id is not null then 'folder:' || folders.folder_id end",
            "coalesce(nullif(test_cases.name, ''), test_cases.key)",
            "test_cases.objective",
            "test_cases.precondition",
            "coalesce(properties.properties, '[]'::jsonb)",
            "steps.steps_hash",
        ]) }}::varchar as payload_hash,
        test_cases._loaded_at
    from test_cases
    left join folders
        on test_cases.folder_id = folders.folder_id
    left join properties
        on test_cases.test_case_id = properties.object_id
    left join call_depths
        on test_cases.key = call_depths.origin_key
    left join cut_calls
        on test_cases.key = cut_calls.test_case_key
    left join call_loops
        on test_cases.key = call_loops.origin_key
    left join call_depth_capped
        on test_cases.key = call_depth_capped.origin_key
    left join callees
        on test_cases.key = callees.test_case_key
    left join steps
        on test_cases.key = steps.parent_source_key

)

select * from final
