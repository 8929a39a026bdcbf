-- The qTest test-cycle tree: Zephyr TEST_CYCLE folders (parents first), the test cycles under their
-- folder's cycle, the test plans as releases (var plans_as, the default; or top-level cycles), one
-- "Ad-hoc executions" cycle when the project has executions outside any cycle, and under a cycle with
-- automation runs the sub-cycles the bulk auto-test-logs endpoint places them in (the test cases' module
-- names). A linked cycle goes under the release of its first plan. What qTest has no field for (a cycle
-- has no properties; a plan's status, owner, labels, ...) is in the "Zephyr details" block of the
-- description, where the proof reads it back.

{#- A cycle placed under a release is not in its folder: the details block names the folder's path. -#}
{%- if var('plans_as') == 'release' %}
    {%- set folder_of_cycle_under_release =
        "case when linked_plans.linked_source_keys is not null then folder_paths.folder_path end" %}
{%- else %}
    {%- set folder_of_cycle_under_release = "null::text" %}
{%- endif %}

with recursive

-- The test-cycle folders placed in their tree (depth, placed_parent_folder_id, mapping_issue).
folders as (

    {{ folder_tree(ref('folder'), 'TEST_CYCLE') }}

),

test_cycles as (

    select * from {{ ref('test_cycle') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_plans as (

    select * from {{ ref('test_plan') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_executions as (

    select * from {{ ref('test_execution') }}
    where project_key = '{{ zephyr_project_key() }}'

),

plan_cycle_links as (

    select * from {{ ref('test_plan_test_cycle') }}
    where project_key = '{{ zephyr_project_key() }}'

),

project_folders as (

    select * from {{ ref('folder') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- Each folder's path from its root ("Parent / Child"), walked up until the parent is not a folder of the
-- project or the chain comes back (a loop): qTest has no folders of releases, so a plan names its own.
folder_ascents as (

    select
        folder_id as start_id,
        parent_folder_id as next_id,
        name::text as folder_path,
        array[folder_id] as seen
    from project_folders

    union all

    select
        folder_ascents.start_id,
        parents.parent_folder_id as next_id,
        parents.name || ' / ' || folder_ascents.folder_path as folder_path,
        folder_ascents.seen || parents.folder_id as seen
    from folder_ascents
    inner join project_folders as parents
        on folder_ascents.next_id = parents.folder_id
    where
        not parents.folder_id = any(folder_ascents.seen)
        and cardinality(folder_ascents.seen) < {{ var('folder_depth_cap') }}

),

folder_paths as (

    select distinct on (start_id)
        start_id as folder_id,
        folder_path
    from folder_ascents
    order by start_id, cardinality(seen) desc

),

-- The values of the details block that repeat or take their label from the data, one text per object.
custom_field_lines as (

    select
        object_type,
        object_id,
        string_agg(
            {{ details_line("'Custom field ' || field_name", "field_text") }}, '' order by field_name
        ) as lines
    from (
        select
            object_type,
            object_id,
            field_name,
            case
                when field_type = 'multi_select'
                    then (
                        select string_agg(items.item, ', ' order by items.n)
                        from jsonb_array_elements_text(field_value::jsonb) with ordinality as items (item, n)
                    )
                else field_value
            end as field_text
        from {{ ref('custom_field') }}
        where
            project_key = '{{ zephyr_project_key() }}'
            and object_type in ('TestCycle', 'TestPlan')
    ) as custom_fields
    group by object_type, object_id

),

issue_lines as (

    select
        object_type,
        object_id,
        string_agg(
            {{ details_line("'Jira issue'", "coalesce(target_url, issue_id::text)") }}, '' order by link_order
        ) as lines
    from {{ ref('issue_link') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type in ('TestCycle', 'TestPlan')
    group by object_type, object_id

),

web_link_lines as (

    select
        object_type,
        object_id,
        string_agg(
            {{ details_line("'Web link'", "url || coalesce(' (' || nullif(description, '') || ')', '')") }},
            '' order by link_order
        ) as lines
    from {{ ref('web_link') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type in ('TestCycle', 'TestPlan')
    group by object_type, object_id

),

plan_label_lines as (

    select
        object_id,
        string_agg({{ details_line("'Label'", "label") }}, '' order by label_order) as lines
    from {{ ref('label') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and object_type = 'TestPlan'
    group by object_id

),

automation_runs as (

    select
        project_key,
        automation_test_cycle_source_key as cycle_source_key,
        array(select jsonb_array_elements_text(automation_module_names))::varchar [] as names,
        _loaded_at
    from {{ ref('qtest_test_runs') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and automation_module_names is not null

),

cycle_folders as (

    select
        folders.project_key,
        'folder:' || folders.folder_id as source_key,
        'cycle_folder' as source_type,
        'test_cycle' as qtest_object_type,
        folders.folder_id as zephyr_id,
        null::varchar as zephyr_key,
        'folder:' || folders.placed_parent_folder_id as parent_source_key,
        coalesce(nullif(folders.name, ''), 'Folder ' || folders.folder_id) as cycle_name,
        'Zephyr folder ' || folders.folder_id as cycle_description,
        null::timestamp as planned_start_date,
        null::timestamp as planned_end_date,
        null::varchar as zephyr_status,
        null::varchar as owner_account_id,
        '[]'::jsonb as linked_source_keys,
        folders.folder_index as cycle_order,
        coalesce(folders.depth, 0) as depth,
        folders.mapping_issue,
        folders._loaded_at
    from folders

),

linked_plans as (

    select
        test_cycle_id,
        -- In code-point order (collate "C"), as the proof sorts them: the first is the one the cycle goes under.
        jsonb_agg(test_plan_key order by test_plan_key collate "C") as linked_source_keys
    from plan_cycle_links
    where test_plan_key is not null
    group by test_cycle_id

),

linked_cycles as (

    select
        test_plan_id,
        jsonb_agg(test_cycle_key order by test_cycle_key) as linked_source_keys
    from plan_cycle_links
    where test_cycle_key is not null
    group by test_plan_id

),

-- A cycle linked to several plans goes under the first one's release (plans_as release); the details
-- block names the others, as qTest keeps a cycle in one container only.
other_plan_lines as (

    select
        linked_plans.test_cycle_id,
        {% if var('plans_as') == 'release' %}
        (
            select string_agg({{ details_line("'Also in test plans'", "others.plan_key") }}, '' order by others.n)
            from jsonb_array_elements_text(linked_plans.linked_source_keys) with ordinality as others (plan_key, n)
            where others.n > 1
        )
        {% else %}
        null::text
        {% endif %} as lines
    from linked_plans

),

cycles as (

    select
        test_cycles.project_key,
        test_cycles.key as source_key,
        'test_cycle' as source_type,
        'test_cycle' as qtest_object_type,
        test_cycles.test_cycle_id as zephyr_id,
        test_cycles.key as zephyr_key,
        {% if var('plans_as') == 'release' %}
        -- A cycle linked to test plans goes under the release of the first of them (by key).
        coalesce(linked_plans.linked_source_keys ->> 0, cycle_folders.source_key) as parent_source_key,
        {% else %}
        cycle_folders.source_key as parent_source_key,
        {% endif %}
        coalesce(nullif(test_cycles.name, ''), test_cycles.key) as cycle_name,
        -- qTest cycles have no properties: the description carries the Zephyr key, for tracing, and the
        -- values qTest has no field for in its details block.
        concat_ws('<br>', nullif(test_cycles.description, ''), 'Zephyr test cycle ' || test_cycles.key)
        || {{ details_block(
            [
                ['Planned start', "to_char(test_cycles.planned_start_date, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"],
                ['Planned end', "to_char(test_cycles.planned_end_date, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"],
                ['Status', 'test_cycles.status'],
                ['Owner', 'test_cycles.owner_id'],
                ['Jira version', 'test_cycles.jira_project_version_id::text'],
                ['Folder', folder_of_cycle_under_release],
            ],
            lines="concat(other_plan_lines.lines, custom_field_lines.lines, issue_lines.lines, web_link_lines.lines)"
        ) }} as cycle_description,
        test_cycles.planned_start_date,
        test_cycles.planned_end_date,
        test_cycles.status as zephyr_status,
        test_cycles.owner_id as owner_account_id,
        coalesce(linked_plans.linked_source_keys, '[]'::jsonb) as linked_source_keys,
        null::integer as cycle_order,
        {% if var('plans_as') == 'release' %}
        case when linked_plans.linked_source_keys is not null then 0 else coalesce(cycle_folders.depth + 1, 0) end
            as depth,
        case
            when linked_plans.linked_source_keys is not null and cycle_folders.source_key is not null
                then 'linked to test plan ' || (linked_plans.linked_source_keys ->> 0)
                || ': placed under its release, not in its folder ' || test_cycles.folder_id
        {% else %}
        coalesce(cycle_folders.depth + 1, 0) as depth,
        case
        {% endif %}
            when test_cycles.folder_id is not null and cycle_folders.source_key is null
                then 'folder ' || test_cycles.folder_id || ' is not a test-cycle folder of the project; placed at the root'
        end as mapping_issue,
        test_cycles._loaded_at
    from test_cycles
    left join cycle_folders
        on test_cycles.folder_id = cycle_folders.zephyr_id
    left join linked_plans
        on test_cycles.test_cycle_id = linked_plans.test_cycle_id
    left join folder_paths
        on test_cycles.folder_id = folder_paths.folder_id
    left join other_plan_lines
        on test_cycles.test_cycle_id = other_plan_lines.test_cycle_id
    left join custom_field_lines
        on custom_field_lines.object_type = 'TestCycle' and test_cycles.test_cycle_id = custom_field_lines.object_id
    left join issue_lines
        on issue_lines.object_type = 'TestCycle' and test_cycles.test_cycle_id = issue_lines.object_id
    left join web_link_lines
        on web_link_lines.object_type = 'TestCycle' and test_cycles.test_cycle_id = web_link_lines.object_id

),

plan_dates as (

    select
        plan_cycle_links.test_plan_id,
        min(test_cycles.planned_start_date) as planned_start_date,
        max(test_cycles.planned_end_date) as planned_end_date
    from plan_cycle_links
    inner join test_cycles
        on plan_cycle_links.test_cycle_id = test_cycles.test_cycle_id
    group by plan_cycle_links.test_plan_id

),

plans as (

    select
        test_plans.project_key,
        test_plans.key as source_key,
        'test_plan' as source_type,
        {% if var('plans_as') == 'release' %}'release'{% else %}'test_cycle'{% endif %} as qtest_object_type,
        test_plans.test_plan_id as zephyr_id,
        test_plans.key as zephyr_key,
        null as parent_source_key,
        coalesce(nullif(test_plans.name, ''), test_plans.key) as cycle_name,
        concat_ws('<br>', nullif(test_plans.objective, ''), 'Zephyr test plan ' || test_plans.key)
        || {{ details_block(
            [
                ['Status', 'test_plans.status'],
                ['Owner', 'test_plans.owner_id'],
                ['Folder', 'folder_paths.folder_path'],
            ],
            lines="concat(plan_label_lines.lines, custom_field_lines.lines, issue_lines.lines, web_link_lines.lines)"
        ) }} as cycle_description,
        -- Zephyr plans have no dates: the release spans the planned dates of its cycles.
        plan_dates.planned_start_date,
        plan_dates.planned_end_date,
        test_plans.status as zephyr_status,
        test_plans.owner_id as owner_account_id,
        coalesce(linked_cycles.linked_source_keys, '[]'::jsonb) as linked_source_keys,
        null::integer as cycle_order,
        0 as depth,
        null as mapping_issue,
        test_plans._loaded_at
    from test_plans
    left join linked_cycles
        on test_plans.test_plan_id = linked_cycles.test_plan_id
    left join plan_dates
        on test_plans.test_plan_id = plan_dates.test_plan_id
    left join folder_paths
        on test_plans.folder_id = folder_paths.folder_id
    left join plan_label_lines
        on test_plans.test_plan_id = plan_label_lines.object_id
    left join custom_field_lines
        on custom_field_lines.object_type = 'TestPlan' and test_plans.test_plan_id = custom_field_lines.object_id
    left join issue_lines
        on issue_lines.object_type = 'TestPlan' and test_plans.test_plan_id = issue_lines.object_id
    left join web_link_lines
        on web_link_lines.object_type = 'TestPlan' and test_plans.test_plan_id = web_link_lines.object_id

),

-- Executions outside any cycle of the project (ad hoc, or their cycle is gone) go to one extra cycle.
ad_hoc_executions as (

    select
        test_executions.project_key,
        count(*) as execution_count,
        max(test_executions._loaded_at) as _loaded_at
    from test_executions
    left join test_cycles
        on test_executions.test_cycle_id = test_cycles.test_cycle_id
    where test_cycles.test_cycle_id is null
    group by test_executions.project_key

),

ad_hoc as (

    select
        project_key,
        'adhoc:' || project_key as source_key,
        'ad_hoc' as source_type,
        'test_cycle' as qtest_object_type,
        null::bigint as zephyr_id,
        null::varchar as zephyr_key,
        null as parent_source_key,
        {{ sql_string(var('ad_hoc_cycle_name')) }} as cycle_name,
        'Zephyr executions of project ' || project_key || ' that ran outside any test cycle ('
        || execution_count || ')' as cycle_description,
        null::timestamp as planned_start_date,
        null::timestamp as planned_end_date,
        null::varchar as zephyr_status,
        null::varchar as owner_account_id,
        '[]'::jsonb as linked_source_keys,
        null::integer as cycle_order,
        0 as depth,
        null as mapping_issue,
        _loaded_at
    from ad_hoc_executions

),

zephyr_cycles as (

    select * from cycle_folders
    union all
    select * from cycles
    union all
    select * from plans
    union all
    select * from ad_hoc

),

-- Every prefix of every automation run's module names, once per cycle: a sub-cycle each.
automation_paths as (

    select
        automation_runs.project_key,
        automation_runs.cycle_source_key,
        automation_runs.names[1:levels.level] as names,
        levels.level,
        max(automation_runs._loaded_at) as _loaded_at
    from automation_runs
    cross join lateral generate_series(1, cardinality(automation_runs.names)) as levels (level)
    group by 1, 2, 3, 4

),

automation_folders as (

    select
        automation_paths.project_key,
        {{ automation_cycle_key('automation_paths.cycle_source_key', 'automation_paths.names') }} as source_key,
        'automation_folder' as source_type,
        'test_cycle' as qtest_object_type,
        null::bigint as zephyr_id,
        null::varchar as zephyr_key,
        case
            when automation_paths.level = 1 then automation_paths.cycle_source_key
            else {{ automation_cycle_key(
                'automation_paths.cycle_source_key',
                'automation_paths.names[1:automation_paths.level - 1]'
            ) }}
        end as parent_source_key,
        automation_paths.names[automation_paths.level] as cycle_name,
        'Automated runs of test cases in module ' || array_to_string(automation_paths.names, ' / ')
            as cycle_description,
        null::timestamp as planned_start_date,
        null::timestamp as planned_end_date,
        null::varchar as zephyr_status,
        null::varchar as owner_account_id,
        '[]'::jsonb as linked_source_keys,
        null::integer as cycle_order,
        zephyr_cycles.depth + automation_paths.level as depth,
        null as mapping_issue,
        automation_paths._loaded_at
    from automation_paths
    inner join zephyr_cycles
        on automation_paths.cycle_source_key = zephyr_cycles.source_key

),

all_cycles as (

    select * from zephyr_cycles
    union all
    select * from automation_folders

),

releases as (

    select source_key from plans
    where qtest_object_type = 'release'

),

final as (

    select
        project_key::varchar as project_key,
        source_key::varchar as source_key,
        parent_source_key::varchar as parent_source_key,
        (case
            when parent_source_key is null then 'root'
            when parent_source_key in (select releases.source_key from releases) then 'release'
            else 'test-cycle'
        end)::varchar as parent_type,
        source_type::varchar as source_type,
        qtest_object_type::varchar as qtest_object_type,
        zephyr_id::bigint as zephyr_id,
        zephyr_key::varchar as zephyr_key,
        cycle_name::varchar as name,
        cycle_description::text as description,
        planned_start_date,
        planned_end_date,
        zephyr_status::varchar as zephyr_status,
        owner_account_id::varchar as owner_account_id,
        linked_source_keys,
        cycle_order::integer as cycle_order,
        depth::integer as depth,
        depth::integer as load_order,
        mapping_issue::text as mapping_issue,
        {{ payload_hash([
            "qtest_object_type",
            "parent_source_key",
            "cycle_name",
            "cycle_description",
            "planned_start_date",
            "planned_end_date",
            "cycle_order",
        ]) }}::varchar as payload_hash,
        _loaded_at
    from all_cycles

)

select * from final
